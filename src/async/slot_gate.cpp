#include "async/slot_gate.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace archie::async {

void slot_gate::set_limit(std::size_t limit) {
  limit_ = limit;
  wake();
}

void slot_gate::admitted() {
  if (held_++ == 0) last_progress_ = clock::now();
}

bool slot_gate::try_enter() {
  if (!waiting_.empty() || held_ >= limit_) return false;
  admitted();
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

boost::asio::awaitable<bool> slot_gate::enter_until(clock::time_point deadline) {
  if (try_enter()) co_return true;
  boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, deadline);
  bool granted = false;
  auto me = waiting_.insert(waiting_.end(), waiter{&timer, &granted});
  auto [ec] = co_await timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
  if (granted) co_return true;
  waiting_.erase(me);
  wake();  // a slot freed while we were at the head may be for the next waiter
  // Aborted without a grant: cancelled from outside, as enter() would be.
  if (ec == boost::asio::error::operation_aborted)
    throw boost::system::system_error(boost::asio::error::operation_aborted);
  co_return false;
}

void slot_gate::leave(clock::duration held_for) {
  if (held_ > 0) --held_;
  // A slot given back unused (held_for zero) is no sign of progress.
  if (held_for > clock::duration::zero()) {
    last_progress_ = clock::now();
    typical_hold_ = typical_hold_ == clock::duration::zero() ? held_for : (typical_hold_ * 7 + held_for) / 8;
  }
  wake();
}

void slot_gate::wake() {
  while (!waiting_.empty() && held_ < limit_) {
    admitted();
    waiter w = waiting_.front();
    waiting_.pop_front();
    *w.granted = true;
    w.timer->cancel();
  }
}

}  // namespace archie::async
