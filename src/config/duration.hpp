#pragma once
// Durations in config are strings with a unit ("250ms", "30s", "5m", "1h") so that a bare
// number can never be misread as the wrong unit (nats.c mixes ms and ns; we do not).
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace archie::config {

/// Parses "<non-negative integer><unit>" with unit ms|s|m|h; nullopt on anything else.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);
/// Formats the shortest exact form: 90000ms -> "90s", 1500ms -> "1500ms".
std::string format_duration(std::chrono::milliseconds d);

}  // namespace archie::config
