#pragma once
// `archie status`: one view of the whole replication, from NATS alone: the live workers
// (the worker registry, fleet/worker_registry.hpp), the consumer's backlog, throughput and
// failures per store, settled outcomes and the dead letters by code.
#include "cli/command_line.hpp"
#include "config/config.hpp"

namespace archie::cli {

/// Exit code: 0 healthy, 1 degraded (the reasons are printed), 4 NATS could not be read.
int run_status(const config::config& cfg, const command_options& opts);

}  // namespace archie::cli
