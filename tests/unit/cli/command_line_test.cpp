#include "cli/command_line.hpp"

#include <doctest/doctest.h>

using namespace archie::cli;

namespace {
invocation ok(std::vector<std::string> args) {
  auto r = parse_command_line(args);
  REQUIRE(std::holds_alternative<invocation>(r));
  return std::get<invocation>(r);
}
std::string bad(std::vector<std::string> args) {
  auto r = parse_command_line(args);
  REQUIRE(std::holds_alternative<usage_error>(r));
  return std::get<usage_error>(r).message;
}
}  // namespace

TEST_CASE("global options are accepted before and after the command") {
  auto a = ok({"--config", "a.toml", "run"});
  CHECK(a.cmd == command::run);
  CHECK(a.config_path == "a.toml");
  auto b = ok({"check-config", "--config=b.toml", "--log-level", "debug"});
  CHECK(b.cmd == command::check_config);
  CHECK(b.config_path == "b.toml");
  CHECK(b.log_level == "debug");
  auto c = ok({"--log-format=text", "verify", "--versions"});
  CHECK(c.log_format == "text");
  CHECK(c.options.versions);
  CHECK(bad({"--log-format"}).find("--log-format needs a format") != std::string::npos);
}

TEST_CASE("help is available for every command") {
  CHECK(ok({"run", "--help"}).help);
  CHECK(ok({"help", "check-config"}).cmd == command::check_config);
  CHECK(ok({}).help);
  for (auto c : {command::run, command::check_config, command::version})
    CHECK(help_text(c).find("Usage: archie") != std::string::npos);
}

TEST_CASE("unknown commands and options are usage errors naming them") {
  CHECK(bad({"replicate"}).find("unknown command \"replicate\"") != std::string::npos);
  CHECK(bad({"run", "--fast"}).find("unknown option --fast") != std::string::npos);
  CHECK(bad({"run", "--config"}).find("--config needs a file path") != std::string::npos);
  CHECK(bad({"run", "extra"}).find("unexpected argument") != std::string::npos);
}

TEST_CASE("--version and -V select the version command") {
  CHECK(ok({"--version"}).cmd == command::version);
  CHECK(ok({"-V"}).cmd == command::version);
}

TEST_CASE("no command at all is a usage error (exit 2), while --help alone is not") {
  CHECK(ok({}).missing_command);
  CHECK_FALSE(ok({"--help"}).missing_command);
  CHECK_FALSE(ok({"run"}).missing_command);
}

TEST_CASE("verify, backfill and dead-letters take their own options and refuse the others") {
  auto v = ok({"verify", "--config", "a.toml", "--route", "2", "--prefix=x/", "--json", "--max-diffs", "5"});
  CHECK(v.cmd == command::verify);
  CHECK(v.options.route == "2");
  CHECK(v.options.prefix == "x/");
  CHECK(v.options.json);
  CHECK(v.options.max_diffs == 5);
  auto b = ok({"backfill", "--all", "--dry-run", "--delete-extra", "--direct", "--max-rps", "50"});
  CHECK(b.cmd == command::backfill);
  CHECK((b.options.all && b.options.dry_run && b.options.delete_extra && b.options.direct));
  CHECK(b.options.max_rps == 50);
  auto d = ok({"dead-letters", "replay", "--code", "malformed_event", "--seq", "3-9", "--dry-run"});
  CHECK(d.cmd == command::dead_letters);
  CHECK(d.options.dead_letter_action == "replay");
  CHECK(d.options.code == "malformed_event");
  CHECK(d.options.seq == "3-9");
  CHECK(bad({"verify", "--delete-extra"}).find("unknown option --delete-extra") != std::string::npos);
  CHECK(bad({"run", "--json"}).find("unknown option --json") != std::string::npos);
  CHECK(bad({"verify", "--all", "--route", "1"}).find("exclude each other") != std::string::npos);
  CHECK(bad({"verify", "--max-diffs", "-1"}).find("--max-diffs") != std::string::npos);
  CHECK(bad({"backfill", "--max-rps", "0"}).find("--max-rps") != std::string::npos);
  CHECK(bad({"dead-letters"}).find("list, replay or purge") != std::string::npos);
  CHECK(bad({"dead-letters", "drop"}).find("unknown dead-letters action") != std::string::npos);
  for (auto c : {command::verify, command::backfill, command::dead_letters, command::status})
    CHECK(help_text(c).find("Usage: archie") != std::string::npos);
}

TEST_CASE("status takes --json and --watch only") {
  auto s = ok({"status", "--config", "a.toml", "--json", "--watch"});
  CHECK(s.cmd == command::status);
  CHECK((s.options.json && s.options.watch));
  CHECK(bad({"status", "--all"}).find("unknown option --all") != std::string::npos);
  CHECK(bad({"verify", "--watch"}).find("unknown option --watch") != std::string::npos);
  CHECK(help_text(std::nullopt).find("status") != std::string::npos);
}
