#pragma once
// What a handler's outcome turns into on the wire, decided without I/O so every branch is
// unit-tested: the dead-letter step of a term, and the nak delay.
#include "async/backoff_policy.hpp"
#include "queue/settle/message_outcome.hpp"

#include <chrono>
#include <cstdint>
#include <random>

namespace archie::queue {

/// Deliveries after which a term whose dead letter cannot be published ends anyway, so a
/// message that can never be dead-lettered does not hold an ack-pending slot for good.
inline constexpr std::uint64_t dead_letter_attempts = 5;

enum class dead_letter_result { not_needed, published, failed };

struct settlement {
  message_outcome outcome;       ///< what is sent: ack, nak (with delay) or term
  bool dead_letter_abandoned = false;  ///< a term that goes through without its dead letter
};

/// Whether `decided` must be dead-lettered before it is sent.
bool needs_dead_letter(const message_outcome& decided, bool dead_letter_configured);

/// The final outcome once the dead-letter publish (if any) is known. A failed dead letter
/// keeps the message (nak dead_letter_failed) until dead_letter_attempts deliveries.
settlement settle_after_dead_letter(const message_outcome& decided, dead_letter_result dead_letter,
                                    std::uint64_t deliveries);

/// The nak delay: the outcome's own (e.g. 0 at shutdown) or the backoff for this delivery.
std::chrono::milliseconds nak_delay(const message_outcome& nak, const async::backoff_policy& backoff,
                                    std::uint64_t deliveries, std::mt19937_64& rng);

}  // namespace archie::queue
