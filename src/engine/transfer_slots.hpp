#pragma once
// The transfer slots one record holds at its destination stores while it is worked on
// (fleet/budget_book.hpp: a fleet max_transfers share, or the fair cap of a destination that
// some route does not write to). A record that cannot have every slot at once waits briefly
// where the full destination's slots are turning over (a busy but healthy store frees one
// within milliseconds); at a slow one (a holder there for over `slow_hold`, or none leaving
// for `brief_wait`) or when the brief wait ends, it is handed back to the queue with a short
// delay rather than waiting in a worker slot, so a slow or saturated destination does not
// stall the others. Where a hand-back would use up the consumer's max_deliver it waits instead.
#include "async/slot_gate.hpp"

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace archie::engine {

class transfer_slots {
 public:
  struct gate {
    std::string store;
    async::slot_gate* slots;
  };

  transfer_slots() = default;
  transfer_slots(const transfer_slots&) = delete;
  transfer_slots& operator=(const transfer_slots&) = delete;
  ~transfer_slots() { release(); }

  using clock = async::slot_gate::clock;
  /// The longest a record waits for a slot at a store whose slots are turning over.
  static constexpr std::chrono::milliseconds brief_wait{250};
  /// Records held this long on average make a store slow: waiting for its slots would hold a
  /// worker slot for about that long.
  static constexpr std::chrono::milliseconds slow_hold{1000};

  /// A slot at every gate, or none; when one is full, its store's name.
  std::optional<std::string> try_take(const std::vector<gate>& gates);
  /// A slot at every gate, waiting up to brief_wait at each full one that is not slow; or
  /// none, and the store whose gate stayed full or is slow.
  boost::asio::awaitable<std::optional<std::string>> take_unless_slow(const std::vector<gate>& gates);
  /// Waits for a slot at every gate, in the order given (callers sort by store name, so
  /// two records never wait for each other's slots).
  boost::asio::awaitable<void> take(const std::vector<gate>& gates);
  void release();

  /// True when records at every one of `gates` usually take longer than `threshold` (or the
  /// store has stalled that long): a record there will be waiting, not working, for most of
  /// its time.
  static bool all_slower_than(const std::vector<gate>& gates, clock::duration threshold);

 private:
  static bool slow(const async::slot_gate& g, clock::time_point now);

  std::vector<async::slot_gate*> held_;
  clock::time_point taken_at_{};
};

/// False when a redelivery could run into the consumer's max_deliver (-1: unlimited).
bool may_hand_back(std::int64_t max_deliver, std::uint64_t deliveries);
/// How long a handed-back record waits: 2 s, doubling with each delivery up to 16 s, +-25 %.
std::chrono::milliseconds hand_back_delay(std::uint64_t deliveries, std::mt19937_64& rng);

}  // namespace archie::engine
