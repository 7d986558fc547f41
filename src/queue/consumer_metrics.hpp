#pragma once
// The queue consumer's Prometheus series, registered once, shared by fetching and settling.
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>

#include <string>

namespace archie::queue {

struct consumer_metrics {
  prometheus::Family<prometheus::Counter>& outcomes;
  prometheus::Counter& fetched;
  prometheus::Family<prometheus::Counter>& fetches;
  prometheus::Gauge& in_flight;
  prometheus::Histogram& latency;
  prometheus::Counter& heartbeats;
  prometheus::Counter& stepped_aside;
  prometheus::Histogram& settle_duration;

  static consumer_metrics& get();
  /// archie_queue_outcomes_total{outcome, code}
  void count_outcome(const char* outcome, const std::string& code) { outcomes.Add({{"outcome", outcome}, {"code", code}}).Increment(); }
};

}  // namespace archie::queue
