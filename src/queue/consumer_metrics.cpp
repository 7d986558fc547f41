#include "queue/consumer_metrics.hpp"

#include "metrics/registry.hpp"

namespace archie::queue {

consumer_metrics& consumer_metrics::get() {
  static consumer_metrics m{
      prometheus::BuildCounter()
          .Name("archie_queue_outcomes_total")
          .Help("Messages settled, by outcome (ack, nak, term, dead_lettered, ack_failed) and cause code")
          .Register(metrics::registry()),
      prometheus::BuildCounter()
          .Name("archie_queue_fetched_messages_total")
          .Help("Messages pulled from the JetStream consumer")
          .Register(metrics::registry())
          .Add({}),
      prometheus::BuildCounter()
          .Name("archie_queue_fetch_requests_total")
          .Help("Pull requests sent, by result (messages, empty, error)")
          .Register(metrics::registry()),
      prometheus::BuildGauge()
          .Name("archie_queue_in_flight_messages")
          .Help("Messages fetched and not yet settled")
          .Register(metrics::registry())
          .Add({}),
      prometheus::BuildHistogram()
          .Name("archie_queue_latency_seconds")
          .Help("Time from the stream storing a message to this worker receiving it")
          .Register(metrics::registry())
          .Add({}, prometheus::Histogram::BucketBoundaries{0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60, 300, 1800, 3600}),
      prometheus::BuildCounter()
          .Name("archie_queue_in_progress_heartbeats_total")
          .Help("In-progress acknowledgements sent for long-running messages")
          .Register(metrics::registry())
          .Add({}),
      prometheus::BuildCounter()
          .Name("archie_queue_stepped_aside_total")
          .Help("Messages that stopped counting against worker.concurrency after a second waiting on a "
                "destination other routes do not use")
          .Register(metrics::registry())
          .Add({}),
      prometheus::BuildHistogram()
          .Name("archie_settle_duration_seconds")
          .Help("Time to settle a handled message: dead letter if any, then ack (confirmed with ack_mode = sync), nak or term")
          .Register(metrics::registry())
          .Add({}, prometheus::Histogram::BucketBoundaries{0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5}),
  };
  return m;
}

}  // namespace archie::queue
