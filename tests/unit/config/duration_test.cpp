#include "config/duration.hpp"

#include <doctest/doctest.h>

using archie::config::format_duration;
using archie::config::parse_duration;
using namespace std::chrono_literals;

TEST_CASE("durations parse with every supported unit") {
  CHECK(parse_duration("250ms") == 250ms);
  CHECK(parse_duration("30s") == 30s);
  CHECK(parse_duration("5m") == 5min);
  CHECK(parse_duration("2h") == 2h);
  CHECK(parse_duration("0s") == 0ms);
}

TEST_CASE("durations without a known unit or with junk are rejected") {
  CHECK_FALSE(parse_duration("30"));
  CHECK_FALSE(parse_duration("s"));
  CHECK_FALSE(parse_duration("-5s"));
  CHECK_FALSE(parse_duration("1.5s"));
  CHECK_FALSE(parse_duration("10 s"));
  CHECK_FALSE(parse_duration("5d"));
  CHECK_FALSE(parse_duration("99999999999999999999h"));
}

TEST_CASE("durations format to their shortest exact unit and round-trip") {
  CHECK(format_duration(90s) == "90s");
  CHECK(format_duration(1500ms) == "1500ms");
  CHECK(format_duration(10min) == "10m");
  CHECK(format_duration(3h) == "3h");
  CHECK(format_duration(0ms) == "0ms");
  for (std::chrono::milliseconds d : {1ms, 999ms, 1000ms, 61000ms, 3600000ms, 86400000ms}) CHECK(parse_duration(format_duration(d)) == d);
}
