#include "cli/command_line.hpp"

#include <cstdlib>

namespace archie::cli {
namespace {

std::optional<command> command_named(const std::string& s) {
  if (s == "run") return command::run;
  if (s == "check-config") return command::check_config;
  if (s == "version") return command::version;
  if (s == "help") return command::help;
  return std::nullopt;
}

constexpr const char* global_options =
    "Options (accepted before or after the command):\n"
    "  -c, --config PATH      TOML config file (default: $ARCHIE_CONFIG)\n"
    "      --log-level LEVEL  trace|debug|info|warn|error; overrides log.level\n"
    "                         (default: $ARCHIE_LOG_LEVEL, then the config)\n"
    "  -h, --help             show help for archie or for the command\n"
    "  -V, --version          print the version, commit and build date\n";

}  // namespace

std::variant<invocation, usage_error> parse_command_line(const std::vector<std::string>& args) {
  invocation inv;
  bool have_command = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value_of = [&](std::string_view name) -> std::optional<std::string> {
      std::string prefix = std::string(name) + "=";
      if (a.rfind(prefix, 0) == 0) return a.substr(prefix.size());
      if (i + 1 < args.size()) return args[++i];
      return std::nullopt;
    };
    if (a == "-V" || a == "--version") {
      inv.cmd = command::version;
      have_command = true;
    } else if (a == "-h" || a == "--help") {
      inv.help = true;
    } else if (a == "-c" || a == "--config" || a.rfind("--config=", 0) == 0) {
      auto v = value_of("--config");
      if (!v || v->empty()) return usage_error{"--config needs a file path"};
      inv.config_path = *v;
    } else if (a == "--log-level" || a.rfind("--log-level=", 0) == 0) {
      auto v = value_of("--log-level");
      if (!v) return usage_error{"--log-level needs a level (trace|debug|info|warn|error)"};
      inv.log_level = *v;
    } else if (!a.empty() && a[0] == '-') {
      return usage_error{"unknown option " + a};
    } else if (!have_command) {
      auto c = command_named(a);
      if (!c) return usage_error{"unknown command \"" + a + "\" (commands: run, check-config, version, help)"};
      inv.cmd = *c;
      have_command = true;
    } else if (inv.cmd == command::help) {
      auto c = command_named(a);
      if (!c) return usage_error{"no help for unknown command \"" + a + "\""};
      inv.cmd = *c;
      inv.help = true;
    } else {
      return usage_error{"unexpected argument \"" + a + "\""};
    }
  }
  if (!have_command) {
    inv.missing_command = !inv.help;
    inv.help = true;
  }
  if (!inv.config_path)
    if (const char* env = std::getenv("ARCHIE_CONFIG"); env && *env) inv.config_path = env;
  if (!inv.log_level)
    if (const char* env = std::getenv("ARCHIE_LOG_LEVEL"); env && *env) inv.log_level = env;
  return inv;
}

std::string help_text(std::optional<command> cmd) {
  if (!cmd || *cmd == command::help) {
    return std::string(
               "archie: replicates object-storage buckets from MinIO bucket events in NATS JetStream.\n\n"
               "Usage: archie [options] <command>\n\n"
               "Commands:\n"
               "  run            run the replication worker until SIGTERM/SIGINT\n"
               "  check-config   validate the config and print it with defaults filled in, secrets redacted\n"
               "  version        print the version\n"
               "  help [command] show help\n\n") +
           global_options +
           "\nExit codes: 0 success, 1 runtime failure, 2 usage error, 3 invalid configuration.\n"
           "Configuration keys are documented in CONFIGURE.md.\n";
  }
  switch (*cmd) {
    case command::run:
      return std::string(
                 "Usage: archie run --config PATH\n\n"
                 "Runs the worker: serves /live, /ready and /metrics on http.address:http.port, pulls\n"
                 "bucket events from the JetStream consumer and replicates each change to its destinations.\n"
                 "SIGTERM or SIGINT drains in-flight work for up to worker.shutdown_wait, then exits;\n"
                 "a second SIGINT exits immediately.\n\n") +
             global_options;
    case command::check_config:
      return std::string(
                 "Usage: archie check-config --config PATH\n\n"
                 "Validates the config file. On success prints the effective configuration (every key,\n"
                 "defaults filled in, secrets shown as <redacted, origin>) and exits 0. On failure prints\n"
                 "one line per problem as FILE:LINE: KEY: REASON and exits 3.\n\n") +
             global_options;
    case command::version:
      return "Usage: archie version   (or archie --version, -V)\n\nPrints the version, the commit and the build date.\n";
    case command::help:
      break;
  }
  return {};
}

}  // namespace archie::cli
