#include "engine/engine_metrics.hpp"

#include "metrics/registry.hpp"

namespace archie::engine {
namespace {

using buckets = prometheus::Histogram::BucketBoundaries;
const buckets seconds_buckets{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600};
const buckets byte_buckets{1024, 16384, 262144, 1048576, 16777216, 134217728, 1073741824, 10737418240.0};
const buckets rate_buckets{1e5, 1e6, 1e7, 5e7, 1e8, 2.5e8, 5e8, 1e9};

prometheus::Histogram& histogram(const char* name, const char* help, const buckets& b) {
  return prometheus::BuildHistogram().Name(name).Help(help).Register(metrics::registry()).Add({}, b);
}
prometheus::Counter& counter(const char* name, const char* help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(metrics::registry()).Add({});
}

}  // namespace

engine_metrics& engine_metrics::get() {
  static engine_metrics m{
      prometheus::BuildCounter()
          .Name("archie_messages_processed_total")
          .Help("Messages processed, by outcome state, cause code, event name and event type")
          .Register(metrics::registry()),
      histogram("archie_messages_transfer_duration_seconds", "Seconds to replicate one object to all destinations", seconds_buckets),
      histogram("archie_messages_transfer_rate_bytes_per_second", "Bytes per second of each replicated object", rate_buckets),
      histogram("archie_messages_transfer_size_bytes", "Bytes of each replicated object", byte_buckets),
      counter("archie_messages_transfer_delivered_total", "Objects replicated to all their destinations"),
      histogram("archie_messages_transfer_queue_duration_seconds", "Seconds from event publish to replication done", seconds_buckets),
      histogram("archie_messages_delete_duration_seconds", "Seconds to propagate one delete", seconds_buckets),
      counter("archie_messages_delete_delivered_total", "Deletes propagated to all destinations"),
      histogram("archie_messages_delete_queue_duration_seconds", "Seconds from event publish to delete done", seconds_buckets),
      prometheus::BuildCounter()
          .Name("archie_stale_deletes_total")
          .Help("Delete events not propagated because the key exists again at the source")
          .Register(metrics::registry()),
      prometheus::BuildCounter()
          .Name("archie_superseded_events_total")
          .Help("Copy events settled without copying because the source object is gone or changed; "
                "the newer state has its own event")
          .Register(metrics::registry()),
      counter("archie_convergence_repairs_total",
              "Extra replication rounds because the source changed while an event was being handled"),
      prometheus::BuildCounter()
          .Name("archie_backfill_events_total")
          .Help("Events published by `archie backfill` (NATS header Archie-Origin: backfill), by outcome state")
          .Register(metrics::registry()),
  };
  return m;
}

}  // namespace archie::engine
