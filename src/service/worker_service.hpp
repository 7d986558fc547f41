#pragma once
// The `run` command: wires config, admin server, NATS and the pull consumer onto one
// io_context and owns the process lifecycle (signals, graceful drain, exit code).
#include "config/config.hpp"
#include "fleet/fleet_position.hpp"
#include "queue/pull_consumer.hpp"
#include "health/readiness.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/thread_pool.hpp>

#include <functional>
#include <vector>

namespace archie::service {

/// What a worker needs to build its message handler once the loop exists.
struct worker_context {
  boost::asio::any_io_executor io;
  boost::asio::thread_pool& blocking;
  health::readiness& ready;
  /// Called once when shutdown_wait has passed with messages still being handled: cut what
  /// they wait on (store requests), so the process ends now and the queue redelivers them.
  std::vector<std::function<void()>>& past_deadline;
  /// Told this worker's place in the fleet after every registry heartbeat (the budgets'
  /// shares); the handler factory may set it.
  std::function<void(fleet::fleet_position)>& on_fleet_position;
};

using handler_factory = std::function<queue::message_handler(worker_context&)>;

/// Runs until SIGTERM/SIGINT and a graceful drain; returns the process exit code.
int run_worker(const config::config& cfg, handler_factory make_handler);

}  // namespace archie::service
