#pragma once
// A counting gate with a limit that can change at any time (a fleet share): at most
// `limit` holders at once. try_enter() never waits, so a caller can give its work back
// instead of holding a worker slot in a queue; enter() waits its turn (first come, first
// served). Lowering the limit never takes a slot away: holders above it leave in their own
// time. Not thread-safe: every call on the executor's thread.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <cstddef>
#include <list>

namespace archie::async {

class slot_gate {
 public:
  static constexpr std::size_t unlimited = static_cast<std::size_t>(-1);

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
  /// Gives a slot back (exactly once per successful enter/try_enter).
  void leave();

 private:
  void wake();

  std::size_t limit_;
  std::size_t held_ = 0;
  struct waiter {
    boost::asio::steady_timer* timer;
    bool* granted;
  };
  std::list<waiter> waiting_;  ///< each granted, then woken (its timer cancelled)
};

}  // namespace archie::async
