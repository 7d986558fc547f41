#include "engine/transfer_slots.hpp"

#include <algorithm>

namespace archie::engine {

std::optional<std::string> transfer_slots::try_take(const std::vector<gate>& gates) {
  for (const auto& g : gates) {
    if (!g.slots->try_enter()) {
      release();
      return g.store;
    }
    held_.push_back(g.slots);
  }
  return std::nullopt;
}

boost::asio::awaitable<void> transfer_slots::take(const std::vector<gate>& gates) {
  for (const auto& g : gates) {
    co_await g.slots->enter();
    held_.push_back(g.slots);
  }
}

void transfer_slots::release() {
  for (auto* s : held_) s->leave();
  held_.clear();
}

bool may_hand_back(std::int64_t max_deliver, std::uint64_t deliveries) {
  return max_deliver < 0 || static_cast<std::int64_t>(deliveries) + 1 < max_deliver;
}

std::chrono::milliseconds hand_back_delay(std::uint64_t deliveries, std::mt19937_64& rng) {
  const std::uint64_t doublings = std::min<std::uint64_t>(deliveries > 0 ? deliveries - 1 : 0, 3);
  const double base = 2000.0 * static_cast<double>(1u << doublings);
  std::uniform_real_distribution<double> jitter(0.75, 1.25);
  return std::chrono::milliseconds(static_cast<std::int64_t>(base * jitter(rng)));
}

}  // namespace archie::engine
