#pragma once
// The transfer slots one record holds at its destination stores while it is worked on
// (fleet/budget_book.hpp: a fleet max_transfers share, or the fair cap of a destination that
// some route does not write to). A record that cannot have every slot at once is handed back
// to the queue with a short delay rather than waiting in a worker slot, so a slow or
// saturated destination does not stall the others; where that would use up the consumer's
// max_deliver it waits instead.
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

  /// A slot at every gate, or none; when one is full, its store's name.
  std::optional<std::string> try_take(const std::vector<gate>& gates);
  /// Waits for a slot at every gate, in the order given (callers sort by store name, so
  /// two records never wait for each other's slots).
  boost::asio::awaitable<void> take(const std::vector<gate>& gates);
  void release();

 private:
  std::vector<async::slot_gate*> held_;
};

/// False when a redelivery could run into the consumer's max_deliver (-1: unlimited).
bool may_hand_back(std::int64_t max_deliver, std::uint64_t deliveries);
/// How long a handed-back record waits: 2 s, doubling with each delivery up to 16 s, +-25 %.
std::chrono::milliseconds hand_back_delay(std::uint64_t deliveries, std::mt19937_64& rng);

}  // namespace archie::engine
