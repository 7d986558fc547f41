#pragma once
// A token bucket whose rate can change at any time (a fleet share, a timetable step), for
// one io executor. Callers are served in the order they ask: each reserves its amount at
// the rate in force and waits for its turn, so many coroutines sharing one budget get an
// even pace, and a large amount is best asked for in chunks (http::send_budget does). An
// idle budget banks at most `burst` worth of time, so a quiet minute is not a later spike.
// Not thread-safe: every call on the executor's thread.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>

namespace archie::async {

class rate_limiter {
 public:
  using clock = std::chrono::steady_clock;

  explicit rate_limiter(std::chrono::milliseconds burst = std::chrono::milliseconds(100)) : burst_(burst) {}

  /// Units per second; 0 or less: no limit (acquire returns at once).
  void set_rate(double per_second);
  double rate() const { return rate_; }
  bool limited() const { return rate_ > 0; }

  /// When a caller asking for `amount` now may go, its amount counted (pure, for tests and
  /// for acquire). Returns `now` when it may go at once.
  clock::time_point reserve(double amount, clock::time_point now);
  /// Waits until `amount` fits the budget; returns the seconds it waited. Cancellable (the
  /// waiting timer obeys the coroutine's cancellation slot); a cancelled reservation is
  /// simply not used.
  boost::asio::awaitable<double> acquire(double amount);

 private:
  std::chrono::duration<double> burst_;
  double rate_ = 0;
  clock::time_point next_free_{};  ///< the budget is spent up to here
};

}  // namespace archie::async
