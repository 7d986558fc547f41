#include "store/request_metrics.hpp"

#include "metrics/registry.hpp"

#include <prometheus/histogram.h>

namespace archie::store {

void observe_request(const std::string& store, const char* operation, int status, double seconds) {
  static auto& family = prometheus::BuildHistogram()
                            .Name("archie_store_request_duration_seconds")
                            .Help("Store HTTP requests by store, operation and status (0: no response)")
                            .Register(metrics::registry());
  family
      .Add({{"store", store}, {"operation", operation}, {"status", std::to_string(status)}},
           prometheus::Histogram::BucketBoundaries{0.005, 0.02, 0.1, 0.5, 2, 10, 60})
      .Observe(seconds);
}

}  // namespace archie::store
