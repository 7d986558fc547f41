#include "queue/settle/settlement.hpp"

#include "async/exponential_backoff.hpp"

namespace archie::queue {

bool needs_dead_letter(const message_outcome& decided, bool dead_letter_configured) {
  return decided.what == message_outcome::kind::term && dead_letter_configured;
}

settlement settle_after_dead_letter(const message_outcome& decided, dead_letter_result dead_letter,
                                    std::uint64_t deliveries) {
  if (dead_letter != dead_letter_result::failed) return {decided, false};
  if (deliveries < dead_letter_attempts) return {message_outcome::nak("dead_letter_failed", decided.reason), false};
  return {decided, true};
}

std::chrono::milliseconds nak_delay(const message_outcome& nak, const async::backoff_policy& backoff,
                                    std::uint64_t deliveries, std::mt19937_64& rng) {
  return nak.delay.value_or(async::backoff_delay(backoff, deliveries, rng));
}

}  // namespace archie::queue
