#pragma once
// Parses archie's command line: `archie [global options] <command> [command options]`.
#include <optional>
#include <variant>
#include <string>
#include <vector>

namespace archie::cli {

enum class command { run, check_config, version, help };

struct invocation {
  command cmd = command::help;
  bool help = false;                     ///< --help given for `cmd`
  bool missing_command = false;          ///< no command and no --help: usage to stderr, exit 2
  std::optional<std::string> config_path;  ///< --config, else $ARCHIE_CONFIG
  std::optional<std::string> log_level;    ///< --log-level, else $ARCHIE_LOG_LEVEL, else config
};

struct usage_error {
  std::string message;
};

/// Returns the invocation or a usage_error naming the offending argument.
std::variant<invocation, usage_error> parse_command_line(const std::vector<std::string>& args);

/// Help text for the top level or one command.
std::string help_text(std::optional<command> cmd);

}  // namespace archie::cli
