#include "log/logger.hpp"

#include <boost/json/parse.hpp>
#include <doctest/doctest.h>

#include <cmath>

namespace alog = archie::log;

namespace {
struct capture {
  std::string out;
  alog::level saved = alog::current_level();
  capture() { alog::set_sink_for_tests(&out); }
  ~capture() {
    alog::set_sink_for_tests(nullptr);
    alog::set_level(saved);
  }
};
}  // namespace

TEST_CASE("a log line is one JSON object with ts, level, msg and the context fields") {
  capture c;
  alog::set_level(alog::level::info);
  alog::info("copied object", {{"key", "a \"quoted\"\nkey"}, {"bytes", 42}});
  REQUIRE(!c.out.empty());
  CHECK(c.out.back() == '\n');
  CHECK(c.out.find('\n') == c.out.size() - 1);  // newline inside the key is escaped
  auto v = boost::json::parse(c.out).as_object();
  CHECK(v.at("level").as_string() == "info");
  CHECK(v.at("msg").as_string() == "copied object");
  CHECK(v.at("key").as_string() == "a \"quoted\"\nkey");
  CHECK(v.at("bytes").as_int64() == 42);
  CHECK(v.at("ts").as_string().size() == 24);
}

TEST_CASE("messages below the configured level are dropped") {
  capture c;
  alog::set_level(alog::level::warn);
  alog::info("hidden");
  alog::debug("hidden");
  CHECK(c.out.empty());
  alog::error("shown");
  CHECK(c.out.find("shown") != std::string::npos);
}

TEST_CASE("log levels parse from their names only") {
  CHECK(alog::parse_level("debug") == alog::level::debug);
  CHECK_FALSE(alog::parse_level("DEBUG"));
  CHECK_FALSE(alog::parse_level("verbose"));
}

TEST_CASE("numbers are written as plain decimals that read back the same") {
  capture c;
  alog::set_level(alog::level::info);
  alog::info("timed", {{"ms", 0.71}, {"rate", 1.3692713}, {"big", 1796623132337.13}, {"n", 42}, {"nan", std::nan("")}});
  CHECK(c.out.find("\"ms\":0.71") != std::string::npos);
  CHECK(c.out.find("\"rate\":1.3692713") != std::string::npos);
  CHECK(c.out.find("\"big\":1796623132337.13") != std::string::npos);
  CHECK(c.out.find("\"n\":42") != std::string::npos);
  CHECK(c.out.find('E') == std::string::npos);
  auto v = boost::json::parse(c.out).as_object();
  CHECK(v.at("ms").as_double() == 0.71);
  CHECK(v.at("nan").is_null());
}

TEST_CASE("the text format is one line a person reads: ts, LEVEL, msg, key=value with odd strings quoted") {
  capture c;
  alog::set_level(alog::level::info);
  alog::set_format(alog::format::text);
  alog::warn("event not done", {{"key", "photos/a b.jpg"}, {"code", "destination_retryable"}, {"ms", 0.71},
                                {"deliveries", 3}, {"reason", "x=1\nnext"}, {"empty", ""}});
  alog::set_format(alog::format::json);
  REQUIRE(c.out.size() > 25);
  CHECK(c.out.find('\n') == c.out.size() - 1);  // one line, whatever the fields hold
  CHECK(c.out.substr(24, 22) == " WARN  event not done ");
  CHECK(c.out.find(" key=\"photos/a b.jpg\"") != std::string::npos);
  CHECK(c.out.find(" code=destination_retryable") != std::string::npos);
  CHECK(c.out.find(" ms=0.71") != std::string::npos);
  CHECK(c.out.find(" deliveries=3") != std::string::npos);
  CHECK(c.out.find(" reason=\"x=1\\nnext\"") != std::string::npos);
  CHECK(c.out.find(" empty=\"\"") != std::string::npos);
  CHECK(alog::parse_format("text") == alog::format::text);
  CHECK_FALSE(alog::parse_format("logfmt"));
}
