#pragma once
// The pipe's own metrics (the layer above reads them off /metrics, never the other way).
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>

namespace archie::pipe {

struct pipe_metrics {
  prometheus::Family<prometheus::Counter>& destination_bytes;  ///< archie_destination_bytes_total{destination}
  prometheus::Gauge& transfers_in_flight;                      ///< archie_transfers_in_flight

  static pipe_metrics& get();
};

}  // namespace archie::pipe
