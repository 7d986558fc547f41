#pragma once
// Replication metrics. The archie_messages_* families follow the original Go archie's
// (deploy/README.md maps each one), named by Prometheus conventions: counters end in _total,
// histograms carry their unit, labels are snake_case (`promtool check metrics` is clean).
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>

#include <string>

namespace archie::engine {

struct engine_metrics {
  prometheus::Family<prometheus::Counter>& processed;      ///< archie_messages_processed_total{state,code,event,event_type}
  prometheus::Histogram& transfer_duration;                ///< seconds
  prometheus::Histogram& transfer_rate;                    ///< bytes per second
  prometheus::Histogram& transfer_size;                    ///< bytes
  prometheus::Counter& transfer_delivered;
  prometheus::Histogram& transfer_queue_duration;          ///< publish -> replicated
  prometheus::Histogram& delete_duration;
  prometheus::Counter& delete_delivered;
  prometheus::Histogram& delete_queue_duration;
  prometheus::Family<prometheus::Counter>& stale_deletes;
  prometheus::Family<prometheus::Counter>& superseded;  ///< {cause}: events whose object is gone or changed
  prometheus::Counter& convergence_repairs;             ///< extra writes after the source changed mid-event
  prometheus::Family<prometheus::Counter>& backfill_events;  ///< {state}: events `archie backfill` published

  static engine_metrics& get();
};

}  // namespace archie::engine
