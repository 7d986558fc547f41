#include "service/shutdown.hpp"

#include "log/logger.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <csignal>
#include <cstdlib>

namespace archie::service {
namespace asio = boost::asio;
using namespace boost::asio::experimental::awaitable_operators;

shutdown_coordinator::shutdown_coordinator(asio::any_io_executor executor, health::readiness& ready,
                                           std::chrono::milliseconds wait)
    : signals_(executor, SIGINT, SIGTERM),
      stop_requested_(executor, std::chrono::steady_clock::time_point::max()),
      ready_(ready),
      wait_(wait) {}

void shutdown_coordinator::request_stop(std::string reason) {
  stop_reason_ = std::move(reason);
  stop_requested_.cancel();
}

void shutdown_coordinator::add_drain_hook(drain_hook hook) { hooks_.push_back(std::move(hook)); }
void shutdown_coordinator::on_finished(std::function<void()> fn) { finished_.push_back(std::move(fn)); }

asio::awaitable<void> shutdown_coordinator::exit_on_second_interrupt() {
  for (;;) {
    int sig = co_await signals_.async_wait(asio::use_awaitable);
    if (sig == SIGINT) {
      log::warn("second SIGINT: exiting immediately without draining");
      std::_Exit(130);
    }
    log::info("already shutting down; send SIGINT to exit immediately");
  }
}

asio::awaitable<void> shutdown_coordinator::watch() {
  auto first = co_await (signals_.async_wait(asio::as_tuple(asio::use_awaitable)) ||
                         stop_requested_.async_wait(asio::as_tuple(asio::use_awaitable)));
  std::string cause = stop_reason_;
  if (first.index() == 0) cause = std::get<1>(std::get<0>(first)) == SIGTERM ? "SIGTERM" : "SIGINT";
  auto started = std::chrono::steady_clock::now();
  auto deadline = started + wait_;
  log::info("shutdown requested", {{"signal", cause}, {"shutdown_wait_ms", static_cast<std::int64_t>(wait_.count())}});
  ready_.set_shutting_down();
  asio::co_spawn(signals_.get_executor(), exit_on_second_interrupt(), asio::detached);
  for (auto& hook : hooks_) {
    try {
      co_await hook(deadline);
    } catch (const std::exception& e) {
      log::error("drain step failed", {{"error", e.what()}});
    }
  }
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  log::info("shutdown complete", {{"drain_ms", static_cast<std::int64_t>(took.count())}});
  signals_.cancel();
  for (auto& fn : finished_) fn();
}

}  // namespace archie::service
