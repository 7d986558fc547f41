#include "engine/replication_report.hpp"

#include "engine/engine_metrics.hpp"
#include "log/logger.hpp"

#include <cmath>

namespace archie::engine {
using queue::message_outcome;

namespace {

// Log lines carry stage times to 0.01 ms: finer is noise, and shorter lines are cheaper.
double round_ms(double ms) { return std::round(ms * 100) / 100; }

}  // namespace

message_outcome report_converged(const event::object_event& ev, const queue::delivery_info& delivery,
                                 const std::vector<route::target>& targets, const convergence_result& result,
                                 const stage_times& times) {
  auto& m = engine_metrics::get();
  // The whole handling: source, writes and checks.
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - times.started).count();
  double queued = std::chrono::duration<double>(std::chrono::system_clock::now() - delivery.published).count();
  const source_state& state = result.final_state;
  if (!state.exists) {
    m.delete_duration.Observe(secs);
    m.delete_delivered.Increment();
    m.delete_queue_duration.Observe(queued);
    log::info("removed", {{"key", ev.key}, {"bucket", ev.bucket}, {"seq", delivery.stream_sequence},
                          {"deliveries", delivery.deliveries}, {"destinations", targets.size()}});
    return message_outcome::ack("removed");
  }
  if (!result.wrote) {
    log::info("already replicated", {{"key", ev.key}, {"bucket", ev.bucket}, {"etag", state.info.etag}});
    return message_outcome::ack_without_work("already_replicated");
  }
  const auto size = static_cast<double>(state.info.size);
  m.transfer_duration.Observe(secs);
  m.transfer_size.Observe(size);
  if (secs > 0) m.transfer_rate.Observe(size / secs);
  m.transfer_delivered.Increment();
  m.transfer_queue_duration.Observe(queued);
  std::string dests;
  for (const auto& t : targets) dests += (dests.empty() ? "" : ",") + t.store + ":" + t.bucket + "/" + t.key;
  log::info("replicated", {{"key", ev.key},
                           {"bucket", ev.bucket},
                           {"event", ev.event_name},
                           {"seq", delivery.stream_sequence},
                           {"deliveries", delivery.deliveries},
                           {"etag", state.info.etag},
                           {"bytes", state.info.size},
                           {"bytes_copied", result.copied_bytes},
                           {"tag_writes", result.tag_writes},
                           {"duration_ms", round_ms(secs * 1000)},
                           {"rate_mb_s", secs > 0 ? size / secs / 1e6 : 0.0},
                           {"queued_ms", round_ms(times.queued_ms)},
                           {"source_ms", round_ms(times.source_ms)},
                           {"write_ms", round_ms(result.write_ms)},
                           {"check_ms", round_ms(result.check_ms)},
                           {"destinations", dests}});
  return message_outcome::ack("copied");
}

message_outcome report_history(const event::object_event& ev, const queue::delivery_info& delivery,
                               const history_result& result, const stage_times& times) {
  if (!result.wrote()) {
    log::info("already replicated", {{"key", ev.key}, {"bucket", ev.bucket}, {"versions", "all"}});
    return message_outcome::ack_without_work("already_replicated");
  }
  auto& m = engine_metrics::get();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - times.started).count();
  if (result.versions_copied > 0) {
    m.transfer_duration.Observe(secs);
    m.transfer_size.Observe(static_cast<double>(result.copied_bytes));
    m.transfer_delivered.Increment();
  }
  log::info("versions replicated", {{"key", ev.key},
                                    {"bucket", ev.bucket},
                                    {"event", ev.event_name},
                                    {"seq", delivery.stream_sequence},
                                    {"deliveries", delivery.deliveries},
                                    {"versions_copied", result.versions_copied},
                                    {"delete_markers", result.markers_written},
                                    {"versions_removed", result.versions_removed},
                                    {"tag_writes", result.tag_writes},
                                    {"bytes_copied", result.copied_bytes},
                                    {"duration_ms", round_ms(secs * 1000)}});
  return message_outcome::ack("copied");
}

}  // namespace archie::engine
