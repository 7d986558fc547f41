#include "config/duration.hpp"

#include <charconv>

namespace archie::config {

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  std::uint64_t n = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc{} || ptr == text.data()) return std::nullopt;
  std::string_view unit(ptr, text.data() + text.size() - ptr);
  std::uint64_t factor = 0;
  if (unit == "ms") factor = 1;
  else if (unit == "s") factor = 1000;
  else if (unit == "m") factor = 60'000;
  else if (unit == "h") factor = 3'600'000;
  else return std::nullopt;
  constexpr std::uint64_t max_ms = std::uint64_t{1} << 53;  // far beyond any sane setting
  if (n > max_ms / factor) return std::nullopt;
  return std::chrono::milliseconds(static_cast<std::int64_t>(n * factor));
}

std::string format_duration(std::chrono::milliseconds d) {
  auto ms = d.count();
  if (ms != 0 && ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
  if (ms != 0 && ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
  if (ms != 0 && ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

}  // namespace archie::config
