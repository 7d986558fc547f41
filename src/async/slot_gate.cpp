#include "async/slot_gate.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace archie::async {

void slot_gate::set_limit(std::size_t limit) {
  limit_ = limit;
  wake();
}

bool slot_gate::try_enter() {
  if (!waiting_.empty() || held_ >= limit_) return false;
  ++held_;
  return true;
}

boost::asio::awaitable<void> slot_gate::enter() {
  if (try_enter()) co_return;
  boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor,
                                  boost::asio::steady_timer::time_point::max());
  bool granted = false;
  auto me = waiting_.insert(waiting_.end(), waiter{&timer, &granted});
  // Ends when wake() grants us a slot (and cancels the timer), or when the coroutine is
  // cancelled from outside: then we leave the queue, holding nothing.
  auto [ec] = co_await timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
  (void)ec;
  if (granted) co_return;
  waiting_.erase(me);
  wake();
  throw boost::system::system_error(boost::asio::error::operation_aborted);
}

void slot_gate::leave() {
  if (held_ > 0) --held_;
  wake();
}

void slot_gate::wake() {
  while (!waiting_.empty() && held_ < limit_) {
    ++held_;
    waiter w = waiting_.front();
    waiting_.pop_front();
    *w.granted = true;
    w.timer->cancel();
  }
}

}  // namespace archie::async
