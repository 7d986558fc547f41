#include "queue/pull_window.hpp"

#include <algorithm>

namespace archie::queue {

pull_window::pull_window(limits l) : limits_(l), free_(l.slots) {}

std::size_t pull_window::take_request(clock::time_point now, bool may_pull) {
  if (!may_pull || free_ <= outstanding_) return 0;
  std::size_t unrequested = free_ - outstanding_;
  // Small top-ups cost a server round trip each; an idle worker (nothing requested) asks at once.
  if (unrequested < limits_.refill_at && outstanding_ > 0) return 0;
  std::size_t batch = std::min(unrequested, limits_.max_batch);
  if (outstanding_ == 0) last_heard_ = now;  // the silence clock starts with the first request
  outstanding_ += batch;
  return batch;
}

void pull_window::request_not_sent(std::size_t batch) { outstanding_ -= std::min(outstanding_, batch); }

bool pull_window::message_arrived(clock::time_point now) {
  last_heard_ = now;
  if (outstanding_ > 0) --outstanding_;
  if (free_ == 0) return false;
  --free_;
  return true;
}

void pull_window::slot_freed() { free_ = std::min(free_ + 1, limits_.slots); }

void pull_window::request_ended(clock::time_point now, std::optional<std::size_t> undelivered) {
  last_heard_ = now;
  outstanding_ = undelivered ? outstanding_ - std::min(outstanding_, *undelivered) : 0;
}

void pull_window::heartbeat(clock::time_point now) { last_heard_ = now; }

bool pull_window::forget_if_silent(clock::time_point now) {
  if (outstanding_ == 0) return false;
  if (now - last_heard_ <= 2 * limits_.heartbeat + std::chrono::seconds(1)) return false;
  outstanding_ = 0;
  return true;
}

}  // namespace archie::queue
