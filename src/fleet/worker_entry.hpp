#pragma once
// What one `archie run` tells the fleet about itself: the entry it keeps in the worker
// registry (fleet/worker_registry.hpp), read back by `archie status`. Numbers only, no error
// texts: an entry is readable by anyone who can read the bucket, and texts can carry names
// an operator would not publish. Counters are the process's totals since it started; rates
// are over the last heartbeat.
#include <prometheus/metric_family.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace archie::fleet {

struct destination_activity {
  double bytes = 0;             ///< written through this worker (archie_destination_bytes_total)
  double bytes_per_second = 0;  ///< over the last heartbeat
  double requests = 0;          ///< store requests answered (all operations)
  double failed_requests = 0;   ///< of those, no answer or a status >= 400 other than 404 and 412
  double failed_per_second = 0; ///< failed requests over the last heartbeat
  double throttled_seconds = 0;  ///< waited for the store's budgets (archie_budget_wait_seconds_total)
  double throttled_per_second = 0;  ///< of waiting per second over the last heartbeat (2: two requests waiting all the time)
  double deferred = 0;           ///< records handed back for want of a transfer slot
};

struct worker_entry {
  std::string id;  ///< the registry key: host name and process ID
  std::string host;
  std::int64_t pid = 0;
  std::string version;
  std::int64_t started_unix = 0;
  std::int64_t updated_unix = 0;
  double transfers_in_flight = 0;
  double messages_in_flight = 0;
  /// Messages settled, by "state/code" ("ack/replicated", "nak/destination_retryable", ...).
  std::map<std::string, double> outcomes;
  /// By store name (stores written or read: a source is listed too, with no bytes).
  std::map<std::string, destination_activity> stores;
};

/// The counters of `families` (a Collect() of archie's registry) as an entry's numbers;
/// `previous` (the last entry sent, if any) and `seconds` since it give the rates.
void fill_from_metrics(worker_entry& entry, const std::vector<prometheus::MetricFamily>& families,
                       const worker_entry* previous, double seconds);

std::string to_json(const worker_entry& entry);
/// nullopt when `text` is not an entry (another writer, a damaged value).
std::optional<worker_entry> entry_from_json(std::string_view text);

/// A registry key for this process: "<host>-<pid>", in the characters a key may hold.
std::string worker_id(const std::string& host, std::int64_t pid);

}  // namespace archie::fleet
