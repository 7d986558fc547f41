#include "async/rate_limiter.hpp"

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>

namespace archie::async {

void rate_limiter::set_rate(double per_second) {
  rate_ = per_second > 0 ? per_second : 0;
}

rate_limiter::clock::time_point rate_limiter::reserve(double amount, clock::time_point now) {
  if (rate_ <= 0) return now;
  // Time banked while idle counts up to the burst; then this amount is paid for in time.
  const auto earliest = now - std::chrono::duration_cast<clock::duration>(burst_);
  const auto start = std::max(next_free_, earliest);
  next_free_ = start + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(amount / rate_));
  return std::max(start, now);
}

boost::asio::awaitable<double> rate_limiter::acquire(double amount) {
  const auto now = clock::now();
  const auto go = reserve(amount, now);
  if (go <= now) co_return 0.0;
  boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, go);
  co_await timer.async_wait(boost::asio::use_awaitable);  // throws operation_aborted when cancelled
  co_return std::chrono::duration<double>(go - now).count();
}

}  // namespace archie::async
