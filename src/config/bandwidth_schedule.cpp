#include "config/bandwidth_schedule.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <limits>

namespace archie::config {

namespace {

bool iequal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

// "HH:MM" -> minutes since midnight.
std::optional<int> parse_time_of_day(std::string_view t) {
  if (t.size() != 5 || t[2] != ':') return std::nullopt;
  int h = 0, m = 0;
  auto hr = std::from_chars(t.data(), t.data() + 2, h);
  auto mr = std::from_chars(t.data() + 3, t.data() + 5, m);
  if (hr.ec != std::errc() || hr.ptr != t.data() + 2 || mr.ec != std::errc() || mr.ptr != t.data() + 5) return std::nullopt;
  if (h < 0 || h > 23 || m < 0 || m > 59) return std::nullopt;
  return h * 60 + m;
}

std::string rate_text(std::uint64_t r) { return r == 0 ? "off" : std::to_string(r); }

}  // namespace

bandwidth_schedule::bandwidth_schedule(std::vector<step> steps) : steps_(std::move(steps)) {
  std::stable_sort(steps_.begin(), steps_.end(), [](const step& a, const step& b) { return a.minute_of_day < b.minute_of_day; });
}

std::uint64_t bandwidth_schedule::at(std::chrono::system_clock::time_point t) const {
  if (steps_.empty()) return 0;
  using namespace std::chrono;
  const auto since_midnight = t.time_since_epoch() - floor<days>(t.time_since_epoch());
  const int minute = static_cast<int>(duration_cast<minutes>(since_midnight).count());
  const step* in_force = &steps_.back();  // wraps from yesterday
  for (const auto& s : steps_)
    if (s.minute_of_day <= minute) in_force = &s;
  return in_force->bytes_per_second;
}

bool bandwidth_schedule::limits() const {
  return std::any_of(steps_.begin(), steps_.end(), [](const step& s) { return s.bytes_per_second > 0; });
}

std::string bandwidth_schedule::describe() const {
  if (steps_.empty()) return "off";
  if (steps_.size() == 1 && steps_[0].minute_of_day == 0) return rate_text(steps_[0].bytes_per_second);
  std::string out;
  for (const auto& s : steps_) {
    char hhmm[16];
    std::snprintf(hhmm, sizeof hhmm, "%02d:%02d", s.minute_of_day / 60, s.minute_of_day % 60);
    out += (out.empty() ? "" : " ") + std::string(hhmm) + "," + rate_text(s.bytes_per_second);
  }
  return out;
}

std::optional<std::uint64_t> parse_byte_rate(std::string_view text) {
  if (iequal(text, "off")) return 0;
  std::uint64_t number = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (ec != std::errc() || end == text.data()) return std::nullopt;
  std::string_view unit(end, static_cast<std::size_t>(text.data() + text.size() - end));
  struct suffix {
    std::string_view name;
    std::uint64_t factor;
  };
  static constexpr suffix suffixes[] = {
      {"", 1},          {"B", 1},
      {"K", 1ull << 10}, {"KiB", 1ull << 10}, {"KB", 1000},
      {"M", 1ull << 20}, {"MiB", 1ull << 20}, {"MB", 1000 * 1000},
      {"G", 1ull << 30}, {"GiB", 1ull << 30}, {"GB", 1000 * 1000 * 1000},
  };
  for (const auto& s : suffixes) {
    if (!iequal(unit, s.name)) continue;
    if (number > std::numeric_limits<std::uint64_t>::max() / s.factor) return std::nullopt;
    return number * s.factor;
  }
  return std::nullopt;
}

std::variant<bandwidth_schedule, std::string> parse_bandwidth_schedule(std::string_view text) {
  std::vector<bandwidth_schedule::step> steps;
  std::size_t pos = 0;
  bool timetable = text.find(',') != std::string_view::npos;
  while (pos < text.size()) {
    if (text[pos] == ' ') {
      ++pos;
      continue;
    }
    std::size_t end = text.find(' ', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view item = text.substr(pos, end - pos);
    pos = end;
    if (!timetable) {
      auto rate = parse_byte_rate(item);
      if (!rate || !steps.empty())
        return "\"" + std::string(text) +
               "\" is not a rate (\"20MB\", \"512KiB\", \"off\") or a timetable (\"08:00,50MiB 19:00,off\")";
      steps.push_back({0, *rate});
      continue;
    }
    std::size_t comma = item.find(',');
    if (comma == std::string_view::npos)
      return "timetable step \"" + std::string(item) + "\" is not HH:MM,RATE (for example \"08:00,50MiB\")";
    auto minute = parse_time_of_day(item.substr(0, comma));
    if (!minute)
      return "timetable step \"" + std::string(item) + "\": \"" + std::string(item.substr(0, comma)) +
             "\" is not a time of day HH:MM (UTC, 00:00 to 23:59)";
    auto rate = parse_byte_rate(item.substr(comma + 1));
    if (!rate)
      return "timetable step \"" + std::string(item) + "\": \"" + std::string(item.substr(comma + 1)) +
             "\" is not a rate such as \"50MiB\", \"20MB\" or \"off\"";
    for (const auto& s : steps)
      if (s.minute_of_day == *minute) return "timetable names " + std::string(item.substr(0, comma)) + " twice";
    steps.push_back({*minute, *rate});
  }
  if (steps.empty()) return std::string("is empty: give a rate (\"20MB\"), a timetable, or \"off\"");
  return bandwidth_schedule(std::move(steps));
}

}  // namespace archie::config
