#pragma once
// Graceful shutdown: the first SIGTERM/SIGINT flips readiness, runs every registered drain
// hook with one shared deadline (worker.shutdown_wait), then stops the loop. A second SIGINT
// exits at once, for the operator who really means it.
#include "health/readiness.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace archie::service {

using drain_hook = std::function<boost::asio::awaitable<void>(std::chrono::steady_clock::time_point deadline)>;

class shutdown_coordinator {
 public:
  shutdown_coordinator(boost::asio::any_io_executor executor, health::readiness& ready, std::chrono::milliseconds wait);

  /// Hooks run in registration order; each must return by the deadline (cancel what is left).
  void add_drain_hook(drain_hook hook);
  /// Runs after every hook, e.g. to close the admin listener and stop the loop.
  void on_finished(std::function<void()> fn);
  /// Waits for the first signal (or request_stop), then drains. Spawn once.
  boost::asio::awaitable<void> watch();
  /// Starts the same graceful drain as SIGTERM, e.g. after a fatal start-up error.
  void request_stop(std::string reason);

 private:
  boost::asio::awaitable<void> exit_on_second_interrupt();

  boost::asio::signal_set signals_;
  boost::asio::steady_timer stop_requested_;
  std::string stop_reason_;
  health::readiness& ready_;
  std::chrono::milliseconds wait_;
  std::vector<drain_hook> hooks_;
  std::vector<std::function<void()>> finished_;
};

}  // namespace archie::service
