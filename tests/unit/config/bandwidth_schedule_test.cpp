#include "config/bandwidth_schedule.hpp"

#include <doctest/doctest.h>

#include <chrono>

using namespace archie::config;
using namespace std::chrono;

namespace {

bandwidth_schedule schedule(const char* text) {
  auto parsed = parse_bandwidth_schedule(text);
  REQUIRE_MESSAGE(std::holds_alternative<bandwidth_schedule>(parsed), text);
  return std::get<bandwidth_schedule>(parsed);
}

std::string error_of(const char* text) {
  auto parsed = parse_bandwidth_schedule(text);
  REQUIRE_MESSAGE(std::holds_alternative<std::string>(parsed), text);
  return std::get<std::string>(parsed);
}

// A UTC time of day on some day.
system_clock::time_point at(int hour, int minute) {
  return system_clock::time_point(days(20000) + hours(hour) + minutes(minute));
}

}  // namespace

TEST_CASE("a rate reads decimal and binary units, bare numbers as bytes, and off as no limit") {
  CHECK(parse_byte_rate("20MB") == 20'000'000);
  CHECK(parse_byte_rate("20MiB") == 20ull << 20);
  CHECK(parse_byte_rate("20M") == 20ull << 20);
  CHECK(parse_byte_rate("500k") == 500ull * 1024);
  CHECK(parse_byte_rate("500KB") == 500'000);
  CHECK(parse_byte_rate("1G") == 1ull << 30);
  CHECK(parse_byte_rate("1gb") == 1'000'000'000);
  CHECK(parse_byte_rate("12345") == 12345);
  CHECK(parse_byte_rate("off") == 0);
  CHECK_FALSE(parse_byte_rate("20 MB"));
  CHECK_FALSE(parse_byte_rate("MB"));
  CHECK_FALSE(parse_byte_rate("20XB"));
  CHECK_FALSE(parse_byte_rate("-5M"));
  CHECK_FALSE(parse_byte_rate("99999999999999999999G"));
}

TEST_CASE("one rate holds all day") {
  auto s = schedule("20MB");
  CHECK(s.limits());
  CHECK(s.at(at(0, 0)) == 20'000'000);
  CHECK(s.at(at(23, 59)) == 20'000'000);
  CHECK(s.describe() == "20000000");
  CHECK_FALSE(schedule("off").limits());
}

TEST_CASE("a timetable step lasts until the next, and the day's last step wraps past midnight") {
  auto s = schedule("08:00,50MiB 19:00,off");
  CHECK(s.at(at(8, 0)) == 50ull << 20);
  CHECK(s.at(at(18, 59)) == 50ull << 20);
  CHECK(s.at(at(19, 0)) == 0);
  CHECK(s.at(at(3, 0)) == 0);  // before 08:00: still 19:00's "off"
  auto night = schedule("22:30,1M 06:00,100k");
  CHECK(night.at(at(23, 0)) == 1ull << 20);
  CHECK(night.at(at(5, 59)) == 1ull << 20);
  CHECK(night.at(at(6, 0)) == 100ull * 1024);
  CHECK(night.describe() == "06:00,102400 22:30,1048576");
}

TEST_CASE("a wrong rate or timetable says which part is wrong") {
  CHECK(error_of("fast").find("is not a rate") != std::string::npos);
  CHECK(error_of("20MB 30MB").find("is not a rate") != std::string::npos);
  CHECK(error_of("08:00,50MiB 19:00").find("\"19:00\" is not HH:MM,RATE") != std::string::npos);
  CHECK(error_of("25:00,1M").find("\"25:00\" is not a time of day") != std::string::npos);
  CHECK(error_of("8:00,1M").find("is not a time of day") != std::string::npos);
  CHECK(error_of("08:00,lots").find("\"lots\" is not a rate") != std::string::npos);
  CHECK(error_of("08:00,1M 08:00,2M").find("names 08:00 twice") != std::string::npos);
  CHECK(error_of("").find("is empty") != std::string::npos);
}
