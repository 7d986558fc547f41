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
