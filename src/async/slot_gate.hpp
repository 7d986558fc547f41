#pragma once
// A counting gate with a limit that can change at any time (a fleet share): at most
// `limit` holders at once. try_enter() never waits, so a caller can give its work back
// instead of holding a worker slot in a queue; enter() waits its turn (first come, first
// served), or until a deadline. Lowering the limit never takes a slot away: holders above it
// leave in their own time. The gate also tells how fast its slots turn over (how long they
// were held lately, and whether any holder has left recently), so a caller can tell a slow
// destination from a busy one before deciding to wait. Not thread-safe: every call on the
// executor's thread.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstddef>
#include <list>

namespace archie::async {

class slot_gate {
 public:
  static constexpr std::size_t unlimited = static_cast<std::size_t>(-1);
  using clock = std::chrono::steady_clock;

  explicit slot_gate(std::size_t limit = unlimited) : limit_(limit) {}
  slot_gate(const slot_gate&) = delete;
  slot_gate& operator=(const slot_gate&) = delete;

  void set_limit(std::size_t limit);
  std::size_t limit() const { return limit_; }
  std::size_t held() const { return held_; }
  bool limited() const { return limit_ != unlimited; }

  /// Takes a slot when one is free and nobody is queued ahead.
  bool try_enter();
  /// Waits for a slot. Cancellable: a cancelled waiter leaves the queue holding nothing.
  boost::asio::awaitable<void> enter();
  /// Waits for a slot until `deadline`; false (holding nothing) when none came by then.
  boost::asio::awaitable<bool> enter_until(clock::time_point deadline);
  /// Gives a slot back (exactly once per successful enter/try_enter); `held_for` is how long
  /// the holder had it (zero: given back unused), which feeds typical_hold() and stalled().
  void leave(clock::duration held_for = clock::duration::zero());

  /// How long slots were held lately: a moving average over about the last 8 holders to
  /// leave with a duration; zero before any.
  clock::duration typical_hold() const { return typical_hold_; }
  /// True when the gate has holders and none has left for `patience` (counted from when it
  /// stopped being empty): whatever they wait on is not answering, or answers slowly.
  bool stalled(clock::time_point now, clock::duration patience) const {
    return held_ > 0 && now - last_progress_ > patience;
  }

 private:
  void wake();
  void admitted();

  std::size_t limit_;
  std::size_t held_ = 0;
  clock::time_point last_progress_{};  ///< the last leave, or when it stopped being empty
  clock::duration typical_hold_{};
  struct waiter {
    boost::asio::steady_timer* timer;
    bool* granted;
  };
  std::list<waiter> waiting_;  ///< each granted, then woken (its timer cancelled)
};

}  // namespace archie::async
