#pragma once
// What a finished event tells operators: the `replicated` / `removed` log lines (benchmarks
// read their stage times) and the transfer and delete metrics, and the ack it ends with.
#include "engine/convergence.hpp"
#include "engine/history_sync.hpp"
#include "event/minio_event.hpp"
#include "queue/settle/message_outcome.hpp"
#include "queue/queue_message.hpp"

#include <chrono>
#include <vector>

namespace archie::engine {

/// Where one event's time went.
struct stage_times {
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();  ///< this worker starts on it
  double queued_ms = 0;  ///< JetStream publish -> this worker starts on the event
  double source_ms = 0;  ///< learning the source's state: HEAD, or the GET of a small object
};

/// A converged event with nothing left to fail: records it and returns its ack ("removed",
/// "copied", or "already_replicated" when no destination needed a write).
queue::message_outcome report_converged(const event::object_event& ev, const queue::delivery_info& delivery,
                                        const std::vector<route::target>& targets, const convergence_result& result,
                                        const stage_times& times);

/// A key whose versions = "all" destinations were levelled without failure: the `versions
/// replicated` log line and the transfer metrics; "copied", or "already_replicated".
queue::message_outcome report_history(const event::object_event& ev, const queue::delivery_info& delivery,
                                      const history_result& result, const stage_times& times);

}  // namespace archie::engine
