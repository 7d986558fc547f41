#pragma once
// A background job that runs a step now and then every `interval` on the io executor until
// stop(), which returns only once a step in progress has finished: what the step uses (a
// NATS connection, say) may be closed right after. Used by the backlog monitor and the
// worker registry's heartbeat.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>

namespace archie::async {

class periodic_loop {
 public:
  periodic_loop(boost::asio::any_io_executor io, std::chrono::milliseconds interval)
      : interval_(interval), wait_(io), finished_(io, boost::asio::steady_timer::time_point::max()) {}
  periodic_loop(const periodic_loop&) = delete;
  periodic_loop& operator=(const periodic_loop&) = delete;

  /// Runs co_await step() until stop(). `step` is a named callable returning awaitable<void>
  /// that outlives this call (GCC 12 rule 2, async/gcc12_coroutines.hpp).
  template <class Step>
  boost::asio::awaitable<void> run(Step& step) {
    running_ = true;
    while (!stopping_) {
      co_await step();
      if (stopping_) break;
      wait_.expires_after(interval_);
      boost::system::error_code ec;
      co_await wait_.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ec));
    }
    running_ = false;
    finished_.cancel();
  }

  /// Ends run() and returns once it has finished (at once if it never ran).
  boost::asio::awaitable<void> stop() {
    stopping_ = true;
    wait_.cancel();
    if (!running_) co_return;
    boost::system::error_code ec;
    co_await finished_.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ec));
  }

  bool stopping() const { return stopping_; }

 private:
  std::chrono::milliseconds interval_;
  boost::asio::steady_timer wait_;
  boost::asio::steady_timer finished_;
  bool stopping_ = false;
  bool running_ = false;
};

}  // namespace archie::async
