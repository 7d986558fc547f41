#include "pipe/pipe_metrics.hpp"

#include "metrics/registry.hpp"

namespace archie::pipe {

pipe_metrics& pipe_metrics::get() {
  static pipe_metrics m = [] {
    auto& checks = prometheus::BuildCounter()
                       .Name("archie_source_checksum_checks_total")
                       .Help("Copies whose bytes were checked against the source's own checksum (S3 flexible "
                             "checksums), by result")
                       .Register(metrics::registry());
    return pipe_metrics{
        prometheus::BuildCounter()
            .Name("archie_destination_bytes_total")
            .Help("Bytes written to each destination store")
            .Register(metrics::registry()),
        prometheus::BuildGauge()
            .Name("archie_transfers_in_flight")
            .Help("Object copies in progress")
            .Register(metrics::registry())
            .Add({}),
        checks.Add({{"result", "match"}}),
        checks.Add({{"result", "mismatch"}}),
        prometheus::BuildCounter()
            .Name("archie_source_reads_resumed_total")
            .Help("Source answers that broke while parts were read from them, continued with a new GET")
            .Register(metrics::registry())
            .Add({}),
    };
  }();
  return m;
}

}  // namespace archie::pipe
