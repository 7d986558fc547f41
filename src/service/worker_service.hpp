#pragma once
// The `run` command: wires config, admin server, NATS and the pull consumer onto one
// io_context and owns the process lifecycle (signals, graceful drain, exit code).
#include "config/config.hpp"
#include "queue/pull_consumer.hpp"
#include "health/readiness.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/thread_pool.hpp>

#include <functional>

namespace archie::service {

/// What a worker needs to build its message handler once the loop exists.
struct worker_context {
  boost::asio::any_io_executor io;
  boost::asio::thread_pool& blocking;
  health::readiness& ready;
};

using handler_factory = std::function<queue::message_handler(worker_context&)>;

/// Runs until SIGTERM/SIGINT and a graceful drain; returns the process exit code.
int run_worker(const config::config& cfg, handler_factory make_handler);

}  // namespace archie::service
