#pragma once
// Waits for a dynamic set of coroutines spawned on the same (single-threaded) executor.
// Children should own their state (shared_ptr): if the waiter is cancelled it stops
// waiting, but the children run to completion and nothing they use dangles.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstddef>

namespace archie::async {

class wait_group {
 public:
  explicit wait_group(boost::asio::any_io_executor ex) : timer_(ex, boost::asio::steady_timer::time_point::max()) {}
  void add(std::size_t n = 1) { pending_ += n; }
  void done() {
    if (--pending_ == 0) timer_.cancel();
  }
  std::size_t pending() const { return pending_; }
  /// Returns when every child is done, or early when the waiting coroutine is cancelled
  /// (check pending()): the caller decides whether to stop the children and wait again.
  boost::asio::awaitable<void> wait() {
    while (pending_ > 0) {
      auto state = co_await boost::asio::this_coro::cancellation_state;
      if (state.cancelled() != boost::asio::cancellation_type::none) co_return;
      timer_.expires_at(boost::asio::steady_timer::time_point::max());
      co_await timer_.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    }
  }

 private:
  std::size_t pending_ = 0;
  boost::asio::steady_timer timer_;
};

}  // namespace archie::async
