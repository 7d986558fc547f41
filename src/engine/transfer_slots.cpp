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
  taken_at_ = clock::now();
  return std::nullopt;
}

bool transfer_slots::slow(const async::slot_gate& g, clock::time_point now) {
  return g.typical_hold() >= slow_hold || g.stalled(now, brief_wait);
}

boost::asio::awaitable<std::optional<std::string>> transfer_slots::take_unless_slow(const std::vector<gate>& gates) {
  for (const auto& g : gates) {
    if (g.slots->try_enter()) {
      held_.push_back(g.slots);
      continue;
    }
    const auto now = clock::now();
    if (slow(*g.slots, now) || !co_await g.slots->enter_until(now + brief_wait)) {
      release();
      co_return g.store;
    }
    held_.push_back(g.slots);
  }
  taken_at_ = clock::now();
  co_return std::nullopt;
}

bool transfer_slots::all_slower_than(const std::vector<gate>& gates, clock::duration threshold) {
  const auto now = clock::now();
  for (const auto& g : gates)
    if (g.slots->typical_hold() < threshold && !g.slots->stalled(now, threshold)) return false;
  return !gates.empty();
}

boost::asio::awaitable<void> transfer_slots::take(const std::vector<gate>& gates) {
  for (const auto& g : gates) {
    co_await g.slots->enter();
    held_.push_back(g.slots);
  }
  taken_at_ = clock::now();
}

void transfer_slots::release() {
  // Slots given back unused (another gate was full) say nothing of how long records take.
  const auto held_for = taken_at_ == clock::time_point{} ? clock::duration::zero() : clock::now() - taken_at_;
  for (auto* s : held_) s->leave(held_for);
  held_.clear();
  taken_at_ = {};
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
