#pragma once
// Parses archie's command line: `archie [global options] <command> [command options]`.
#include <cstdint>
#include <optional>
#include <variant>
#include <string>
#include <vector>

namespace archie::cli {

enum class command { run, check_config, version, help, verify, backfill, dead_letters, status };

/// Options of verify, backfill, dead-letters and status (each command accepts only its own).
struct command_options {
  std::optional<std::string> route;  ///< --route: a route's number (1-based) or its source "store:bucket[/prefix]"
  bool all = false;                  ///< --all routes
  std::string prefix;                ///< --prefix: only source keys under it
  bool checksum = false;             ///< verify --checksum
  bool versions = false;             ///< verify --versions
  bool json = false;                 ///< --json: the final report on stdout as JSON
  std::int64_t max_diffs = 20;       ///< verify --max-diffs: differences listed in the report
  bool dry_run = false;              ///< backfill / dead-letters replay: print, change nothing
  bool delete_extra = false;         ///< backfill: remove keys the source does not have
  bool direct = false;               ///< backfill: copy in-process instead of publishing events
  double max_rps = 0;                ///< backfill: repairs per second (0: unlimited)
  std::string dead_letter_action;    ///< list | replay | purge
  std::optional<std::string> code;   ///< dead-letters --code
  std::optional<std::string> since;  ///< dead-letters --since: a duration ago ("2h") or RFC 3339 time
  std::optional<std::string> seq;    ///< dead-letters --seq A-B (or one sequence)
  bool watch = false;                ///< status --watch: again every 2 s until interrupted
};

struct invocation {
  command cmd = command::help;
  bool help = false;                     ///< --help given for `cmd`
  bool missing_command = false;          ///< no command and no --help: usage to stderr, exit 2
  std::optional<std::string> config_path;  ///< --config, else $ARCHIE_CONFIG
  std::optional<std::string> log_level;    ///< --log-level, else $ARCHIE_LOG_LEVEL, else config
  std::optional<std::string> log_format;   ///< --log-format, else $ARCHIE_LOG_FORMAT, else config
  command_options options;
};

struct usage_error {
  std::string message;
};

/// Returns the invocation or a usage_error naming the offending argument.
std::variant<invocation, usage_error> parse_command_line(const std::vector<std::string>& args);

/// Help text for the top level or one command.
std::string help_text(std::optional<command> cmd);

}  // namespace archie::cli
