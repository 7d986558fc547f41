#pragma once
// The whole replication at one moment, as `archie status` and the admin server's /status
// page show it: the registered workers, the consumer's backlog, the stores' numbers summed
// over the workers, the messages settled by state and code, and the dead letters by code,
// with the reasons it is degraded. Read from NATS alone.
#include "config/config.hpp"
#include "fleet/run_summaries.hpp"
#include "fleet/worker_entry.hpp"
#include "queue/backlog_monitor.hpp"

#include <nats/nats.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace archie::fleet {

struct dead_letter_counts {
  std::uint64_t total = 0;  ///< counted, up to max_dead_letters_counted
  bool complete = true;     ///< false: there are more than were counted
  std::map<std::string, std::uint64_t> by_code;
};

/// Dead letters read to count them by code; a larger stream is reported as "at least".
inline constexpr std::uint64_t max_dead_letters_counted = 10'000;

struct fleet_view {
  std::int64_t read_unix = 0;  ///< when it was read
  std::vector<worker_entry> workers;
  queue::backlog_snapshot backlog;
  std::optional<dead_letter_counts> dead_letters;  ///< none without queue.dead_letter_subject
  std::map<std::string, destination_activity> stores;  ///< summed over the workers
  /// The fleet-wide budget of each store that has one, in words ("bandwidth 19.1 MiB/s,
  /// requests 60/s"), the timetable step in force when read.
  std::map<std::string, std::string> budgets;
  std::map<std::string, double> outcomes;              ///< summed over the workers
  std::vector<run_summary> runs;                       ///< the last verify / backfill of each route
  std::vector<std::string> problems;                   ///< why it is degraded; empty: healthy
  bool healthy() const { return problems.empty(); }
};

/// Reads the view (blocking JetStream requests: call it off the I/O thread). Throws nats_error.
fleet_view read_fleet_view(const config::config& cfg, jsCtx* js);

/// The view as one JSON object (what status --json and /status.json print).
std::string fleet_view_json(const fleet_view& v);

/// A store's fleet budget in words at `now`; empty when it has none.
std::string describe_budget(const config::store_budget& b, std::chrono::system_clock::time_point now);

/// "1.5 MiB": bytes in binary units, one decimal above bytes.
std::string human_bytes(double bytes);
/// "2.5 s/s": seconds spent waiting for a budget per second (summed over concurrent
/// waiters), "0" below 0.05.
std::string human_wait_rate(double seconds_per_second);
/// "45s", "12m", "3h": an age, to the unit that keeps it short.
std::string human_age(std::int64_t seconds);

}  // namespace archie::fleet
