#pragma once
// Replication metrics. The archie_messages_* names and labels are the original Go archie's,
// so existing dashboards keep working; the rest are new.
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>

#include <string>

namespace archie::engine {

struct engine_metrics {
  prometheus::Family<prometheus::Counter>& processed;      ///< archie_messages_processed_count{state,code,event,eventType}
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

  static engine_metrics& get();
};

}  // namespace archie::engine
