#pragma once
// The pipe's own metrics (the layer above reads them off /metrics, never the other way).
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>

namespace archie::pipe {

struct pipe_metrics {
  prometheus::Family<prometheus::Counter>& destination_bytes;  ///< archie_destination_bytes_total{destination}
  prometheus::Gauge& transfers_in_flight;                      ///< archie_transfers_in_flight
  /// archie_source_checksum_checks_total{result="match"|"mismatch"}: copies whose bytes were
  /// checked against the source's own checksum.
  prometheus::Counter& checksum_matches;
  prometheus::Counter& checksum_mismatches;
  /// archie_source_reads_resumed_total: answers that broke while parts were read from them,
  /// continued with a new GET from where they stopped.
  prometheus::Counter& reads_resumed;

  static pipe_metrics& get();
};

}  // namespace archie::pipe
