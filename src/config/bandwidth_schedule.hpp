#pragma once
// A bandwidth budget that may change with the time of day, written the way rclone's
// --bwlimit is: one rate ("20MB", "512KiB", "off") or a timetable of "HH:MM,RATE" steps
// ("08:00,50MiB 19:00,off"). Times are UTC, so every worker of a fleet reads one timetable
// the same way whatever its time zone. Pure: parsing and lookup only.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace archie::config {

class bandwidth_schedule {
 public:
  struct step {
    int minute_of_day = 0;              ///< 0..1439, UTC
    std::uint64_t bytes_per_second = 0;  ///< 0: no limit ("off")
  };

  bandwidth_schedule() = default;  ///< no limit at any time
  explicit bandwidth_schedule(std::vector<step> steps);

  /// The limit in force at `t`, 0 for none. A step lasts until the next one; before the
  /// first step of a day, the day's last step is still in force (a timetable wraps).
  std::uint64_t at(std::chrono::system_clock::time_point t) const;
  /// True when some step limits the rate.
  bool limits() const;
  const std::vector<step>& steps() const { return steps_; }
  /// The text it was read from, normalised ("20000000" or "08:00,52428800 19:00,off").
  std::string describe() const;

 private:
  std::vector<step> steps_;  ///< sorted by minute, at most one per minute
};

/// "20MB" (10^6), "20MiB" or "20M" (2^20), "500k"/"500KiB" (1024), "500KB" (1000), "1G",
/// "1GB", a plain byte count, or "off": bytes per second, 0 for "off". nullopt when it is none
/// of these.
std::optional<std::uint64_t> parse_byte_rate(std::string_view text);

/// A rate or a timetable; the error says what is wrong, in words for the config error.
std::variant<bandwidth_schedule, std::string> parse_bandwidth_schedule(std::string_view text);

}  // namespace archie::config
