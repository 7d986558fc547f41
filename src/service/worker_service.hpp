#pragma once
// The `run` command: wires config, admin server and pipeline components onto one io_context
// and owns the process lifecycle (signals, graceful drain, exit code).
#include "config/config.hpp"

namespace archie::service {

/// Runs until SIGTERM/SIGINT and a graceful drain; returns the process exit code.
int run_worker(const config::config& cfg);

}  // namespace archie::service
