#include "pipe/pipe_metrics.hpp"

#include "metrics/registry.hpp"

namespace archie::pipe {

pipe_metrics& pipe_metrics::get() {
  static pipe_metrics m{
      prometheus::BuildCounter()
          .Name("archie_destination_bytes_total")
          .Help("Bytes written to each destination store")
          .Register(metrics::registry()),
      prometheus::BuildGauge()
          .Name("archie_transfers_in_flight")
          .Help("Object copies in progress")
          .Register(metrics::registry())
          .Add({}),
  };
  return m;
}

}  // namespace archie::pipe
