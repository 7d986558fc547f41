#include "cli/command_line.hpp"

#include <cstdlib>

namespace archie::cli {
namespace {

std::optional<command> command_named(const std::string& s) {
  if (s == "run") return command::run;
  if (s == "check-config") return command::check_config;
  if (s == "version") return command::version;
  if (s == "help") return command::help;
  if (s == "verify") return command::verify;
  if (s == "backfill") return command::backfill;
  if (s == "dead-letters") return command::dead_letters;
  if (s == "status") return command::status;
  return std::nullopt;
}

// Which command options each command takes; a value option is followed by its value.
bool takes_option(command c, std::string_view opt) {
  auto in = [&](std::initializer_list<std::string_view> names) {
    for (auto n : names)
      if (n == opt) return true;
    return false;
  };
  switch (c) {
    case command::verify: return in({"--route", "--all", "--prefix", "--checksum", "--versions", "--json", "--max-diffs"});
    case command::backfill:
      return in({"--route", "--all", "--prefix", "--json", "--dry-run", "--delete-extra", "--direct", "--max-rps"});
    case command::dead_letters: return in({"--code", "--since", "--seq", "--json", "--dry-run"});
    case command::status: return in({"--json", "--watch"});
    default: return false;
  }
}

bool is_value_option(std::string_view opt) {
  return opt == "--route" || opt == "--prefix" || opt == "--max-diffs" || opt == "--max-rps" || opt == "--code" ||
         opt == "--since" || opt == "--seq";
}

// Sets one command option; returns an error message or "".
std::string set_option(command_options& o, std::string_view opt, const std::string& value) {
  if (opt == "--route") o.route = value;
  else if (opt == "--all") o.all = true;
  else if (opt == "--prefix") o.prefix = value;
  else if (opt == "--checksum") o.checksum = true;
  else if (opt == "--versions") o.versions = true;
  else if (opt == "--json") o.json = true;
  else if (opt == "--dry-run") o.dry_run = true;
  else if (opt == "--watch") o.watch = true;
  else if (opt == "--delete-extra") o.delete_extra = true;
  else if (opt == "--direct") o.direct = true;
  else if (opt == "--code") o.code = value;
  else if (opt == "--since") o.since = value;
  else if (opt == "--seq") o.seq = value;
  else if (opt == "--max-diffs") {
    char* end = nullptr;
    long long n = std::strtoll(value.c_str(), &end, 10);
    if (value.empty() || *end || n < 0) return "--max-diffs needs a non-negative number";
    o.max_diffs = n;
  } else if (opt == "--max-rps") {
    char* end = nullptr;
    double r = std::strtod(value.c_str(), &end);
    if (value.empty() || *end || !(r > 0)) return "--max-rps needs a positive number";
    o.max_rps = r;
  }
  return {};
}

constexpr const char* global_options =
    "Options (accepted before or after the command):\n"
    "  -c, --config PATH      TOML config file (default: $ARCHIE_CONFIG)\n"
    "      --log-level LEVEL  trace|debug|info|warn|error; overrides log.level\n"
    "                         (default: $ARCHIE_LOG_LEVEL, then the config)\n"
    "      --log-format FMT   json|text: JSON lines, or \"ts LEVEL msg key=value\" for a\n"
    "                         terminal; overrides log.format (default: $ARCHIE_LOG_FORMAT)\n"
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
    } else if (a == "--log-format" || a.rfind("--log-format=", 0) == 0) {
      auto v = value_of("--log-format");
      if (!v) return usage_error{"--log-format needs a format (json|text)"};
      inv.log_format = *v;
    } else if (!a.empty() && a[0] == '-' && have_command &&
               takes_option(inv.cmd, std::string_view(a).substr(0, a.find('=')))) {
      std::string name = a.substr(0, a.find('='));
      std::string value;
      if (is_value_option(name)) {
        auto v = value_of(name);
        if (!v) return usage_error{name + " needs a value"};
        value = *v;
      } else if (name != a) {
        return usage_error{name + " takes no value"};
      }
      if (auto err = set_option(inv.options, name, value); !err.empty()) return usage_error{err};
    } else if (!a.empty() && a[0] == '-') {
      return usage_error{"unknown option " + a};
    } else if (!have_command) {
      auto c = command_named(a);
      if (!c)
        return usage_error{"unknown command \"" + a +
                           "\" (commands: run, check-config, verify, backfill, dead-letters, status, version, help)"};
      inv.cmd = *c;
      have_command = true;
    } else if (inv.cmd == command::dead_letters && inv.options.dead_letter_action.empty()) {
      if (a != "list" && a != "replay" && a != "purge")
        return usage_error{"unknown dead-letters action \"" + a + "\" (list, replay, purge)"};
      inv.options.dead_letter_action = a;
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
  if (!inv.help && inv.cmd == command::dead_letters && inv.options.dead_letter_action.empty())
    return usage_error{"dead-letters needs an action: list, replay or purge"};
  if (inv.options.route && inv.options.all) return usage_error{"--route and --all exclude each other"};
  if (!inv.config_path)
    if (const char* env = std::getenv("ARCHIE_CONFIG"); env && *env) inv.config_path = env;
  if (!inv.log_level)
    if (const char* env = std::getenv("ARCHIE_LOG_LEVEL"); env && *env) inv.log_level = env;
  if (!inv.log_format)
    if (const char* env = std::getenv("ARCHIE_LOG_FORMAT"); env && *env) inv.log_format = env;
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
               "  verify         compare the source with every destination of a route (no NATS needed)\n"
               "  backfill       make the destinations equal to the source (publishes events or copies)\n"
               "  dead-letters   list, replay or purge dead-lettered messages\n"
               "  status         the fleet at a glance: workers, backlog, stores, dead letters\n"
               "  version        print the version\n"
               "  help [command] show help\n\n") +
           global_options +
           "\nExit codes: 2 usage error, 3 invalid configuration, and per command:\n"
           "  run           0 clean shutdown, 1 runtime failure, 130 second SIGINT (no draining)\n"
           "  check-config  0 valid\n"
           "  verify        0 everything equal, 1 differences found, 4 a store could not be listed\n"
           "                or read (the comparison is incomplete), 130 interrupted\n"
           "  backfill      0 all repairs done or published, 1 some failed, 130 interrupted\n"
           "  dead-letters  0 done, 1 a NATS request failed\n"
           "  status        0 healthy, 1 degraded, 4 NATS could not be read\n"
           "Configuration keys are documented in CONFIGURE.md.\n";
  }
  switch (*cmd) {
    case command::run:
      return std::string(
                 "Usage: archie run --config PATH\n\n"
                 "Runs the worker: serves /live, /ready, /metrics, /status and /status.json on\n"
                 "http.address:http.port, pulls bucket events from the JetStream consumer and replicates\n"
                 "each change to its destinations.\n"
                 "SIGTERM or SIGINT drains in-flight work for up to worker.shutdown_wait, then exits;\n"
                 "a second SIGINT exits immediately.\n"
                 "Exit codes: 0 clean shutdown, 1 runtime failure (e.g. admin port in use, stream or\n"
                 "consumer refused by NATS), 2 usage error, 3 invalid configuration, 130 second SIGINT.\n\n") +
             global_options;
    case command::check_config:
      return std::string(
                 "Usage: archie check-config --config PATH\n\n"
                 "Validates the config file. On success prints the effective configuration (every key,\n"
                 "defaults filled in, secrets shown as <redacted, origin>) and exits 0. On failure prints\n"
                 "one line per problem as FILE:LINE: KEY: REASON and exits 3.\n"
                 "Exit codes: 0 valid, 2 usage error, 3 invalid configuration.\n\n") +
             global_options;
    case command::verify:
      return std::string(
                 "Usage: archie verify --config PATH [--route R | --all] [--prefix P] [--checksum] [--versions]\n"
                 "                     [--json] [--max-diffs N]\n\n"
                 "Lists the route's source bucket and every destination (paged, merged by key: memory does\n"
                 "not grow with the bucket) and classifies each key as equal, missing (at the destination),\n"
                 "extra (only at the destination) or different (size, or the source ETag recorded on the copy\n"
                 "vs the source's ETag). Honours the route's prefix rewrite and exclude patterns. Needs no NATS.\n\n"
                 "  --route R      the route: its number in the config (1 = first [[route]]) or its source as\n"
                 "                 STORE:BUCKET or STORE:BUCKET/PREFIX; optional when there is one route\n"
                 "  --all          every route\n"
                 "  --prefix P     only source keys starting with P\n"
                 "  --checksum     compare content by reading both sides (8 MiB parts, source and replica\n"
                 "                 read at once) for keys of equal size, instead of ETags and markers\n"
                 "  --versions     also compare version histories at versions = \"all\" destinations: every\n"
                 "                 source key with versions (ListObjectVersions), each copy by the source\n"
                 "                 version ID it records; a key whose history is not level is different\n"
                 "  --json         the final report as one JSON object on stdout\n"
                 "  --max-diffs N  differences listed in the report (default 20; counts are always complete)\n\n"
                 "Progress: a live line on stderr when it is a terminal, else a JSON line on stderr every 5 s\n"
                 "($ARCHIE_PROGRESS_INTERVAL, e.g. 500ms). Ctrl-C stops and reports how far it got (exit 130).\n"
                 "Exit codes: 0 everything equal, 1 differences found, 2 usage error, 3 invalid\n"
                 "configuration, 4 a store could not be listed or read (the comparison is incomplete),\n"
                 "130 interrupted.\n\n") +
             global_options;
    case command::backfill:
      return std::string(
                 "Usage: archie backfill --config PATH [--route R | --all] [--prefix P] [--dry-run]\n"
                 "                       [--delete-extra] [--direct] [--max-rps R] [--json]\n\n"
                 "Walks the route like verify and repairs what differs. By default it publishes a synthetic\n"
                 "s3:ObjectCreated:Put event in MinIO's format (principal and user agent \"archie-backfill\",\n"
                 "NATS header Archie-Origin: backfill) for every key missing or different at a destination,\n"
                 "so the workers copy them; with --delete-extra also s3:ObjectRemoved:Delete for keys only the\n"
                 "destinations have (the worker removes them only if the source has no such key).\n"
                 "Routes with versions = \"all\" destinations also have their version histories walked (as\n"
                 "verify --versions) and levelled, keys whose latest version is a delete marker included.\n\n"
                 "  --route R, --all, --prefix P   as for verify\n"
                 "  --direct        copy and remove in this process, through the same engine as `run`\n"
                 "                  (worker.concurrency at a time); no NATS needed\n"
                 "  --dry-run       print what would be done; change and publish nothing\n"
                 "  --delete-extra  also remove extras (as rclone sync vs rclone copy)\n"
                 "  --max-rps R     at most R repairs (events or copies) per second\n"
                 "  --json          the final report as one JSON object on stdout\n\n"
                 "Progress as for verify. Exit codes: 0 all repairs done or published (or nothing to do),\n"
                 "1 some failed (or NATS or a store could not be reached), 2 usage error, 3 invalid\n"
                 "configuration, 130 interrupted.\n\n") +
             global_options;
    case command::dead_letters:
      return std::string(
                 "Usage: archie dead-letters list|replay|purge --config PATH [--code C] [--since T]\n"
                 "                           [--seq A-B] [--dry-run] [--json]\n\n"
                 "Works on the dead-letter stream (<queue.stream.name>-dead-letter, fed by\n"
                 "queue.dead_letter_subject).\n"
                 "  list     each dead letter: sequence, time, Archie-Term-Code, Archie-Term-Reason, original\n"
                 "           subject and sequence, deliveries (with --json: one JSON object per line)\n"
                 "  replay   republishes the selected ones to their original subject; each is deleted from the\n"
                 "           dead-letter stream only after JetStream acknowledged the publish. Truncated\n"
                 "           dead letters (Archie-Truncated) are skipped: their body is incomplete\n"
                 "  purge    deletes the selected ones\n\n"
                 "  --code C    only dead letters with Archie-Term-Code C\n"
                 "  --since T   only those stored after T: a duration ago (\"2h\", \"30m\") or an RFC 3339 UTC\n"
                 "              time (2026-11-29T12:00:00Z)\n"
                 "  --seq A-B   only dead-letter sequences A to B (or one sequence A)\n"
                 "  --dry-run   replay/purge: print what would be done\n\n"
                 "Exit codes: 0 done, 1 a NATS request (or a replay or purge) failed, 2 usage error\n"
                 "(also: no queue.dead_letter_subject), 3 invalid configuration.\n\n") +
             global_options;
    case command::status:
      return std::string(
                 "Usage: archie status --config PATH [--json] [--watch]\n\n"
                 "One view of the whole replication, read from NATS: the workers registered in the worker\n"
                 "registry (fleet.registry_bucket; each `archie run` writes its entry every fleet.heartbeat,\n"
                 "gone fleet.ttl after it stops), the consumer's backlog, bytes, rate and failed requests\n"
                 "per store, messages settled by state and code (totals of the live workers since they\n"
                 "started), and the dead letters by code.\n"
                 "It is degraded when messages wait and no worker is registered, when a store failed\n"
                 "requests during the workers' last heartbeat, or when there are dead letters.\n\n"
                 "  --json    one JSON object (with --watch: one per line)\n"
                 "  --watch   again every 2 s, until interrupted\n\n"
                 "Exit codes: 0 healthy, 1 degraded, 2 usage error, 3 invalid configuration, 4 NATS could\n"
                 "not be read.\n\n") +
             global_options;
    case command::version:
      return "Usage: archie version   (or archie --version, -V)\n\nPrints the version, the commit and the build date.\n";
    case command::help:
      break;
  }
  return {};
}

}  // namespace archie::cli
