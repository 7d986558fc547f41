#include "queue/settle/settlement.hpp"

#include <doctest/doctest.h>

using namespace archie::queue;
using namespace std::chrono_literals;

TEST_CASE("only a term is dead-lettered, and only when a dead-letter subject is configured") {
  CHECK(needs_dead_letter(message_outcome::term("malformed_event", "x"), true));
  CHECK_FALSE(needs_dead_letter(message_outcome::term("malformed_event", "x"), false));
  CHECK_FALSE(needs_dead_letter(message_outcome::nak("source_retryable", "x"), true));
  CHECK_FALSE(needs_dead_letter(message_outcome::ack("copied"), true));
}

TEST_CASE("a term whose dead letter was published goes out as a term") {
  auto s = settle_after_dead_letter(message_outcome::term("destination_permanent", "r"), dead_letter_result::published, 1);
  CHECK(s.outcome.what == message_outcome::kind::term);
  CHECK(s.outcome.code == "destination_permanent");
  CHECK_FALSE(s.dead_letter_abandoned);
}

TEST_CASE("a failed dead letter keeps the message (nak) until the fifth delivery, then terminates anyway") {
  auto term = message_outcome::term("malformed_event", "not json");
  for (std::uint64_t d = 1; d < dead_letter_attempts; ++d) {
    auto s = settle_after_dead_letter(term, dead_letter_result::failed, d);
    CHECK(s.outcome.what == message_outcome::kind::nak);
    CHECK(s.outcome.code == "dead_letter_failed");
    CHECK(s.outcome.reason == "not json");
    CHECK_FALSE(s.dead_letter_abandoned);
  }
  auto last = settle_after_dead_letter(term, dead_letter_result::failed, dead_letter_attempts);
  CHECK(last.outcome.what == message_outcome::kind::term);
  CHECK(last.outcome.code == "malformed_event");
  CHECK(last.dead_letter_abandoned);
}

TEST_CASE("acks and naks pass through unchanged") {
  auto a = settle_after_dead_letter(message_outcome::ack("copied"), dead_letter_result::not_needed, 9);
  CHECK(a.outcome.what == message_outcome::kind::ack);
  auto n = settle_after_dead_letter(message_outcome::nak("timeout", "slow"), dead_letter_result::not_needed, 9);
  CHECK(n.outcome.what == message_outcome::kind::nak);
  CHECK(n.outcome.code == "timeout");
}

TEST_CASE("a nak uses its own delay when it has one (shutdown: 0), else the backoff for the delivery") {
  archie::async::backoff_policy backoff{1000ms, 2.0, 60000ms, 0.0};
  std::mt19937_64 rng(1);
  CHECK(nak_delay(message_outcome::nak("shutdown", "stop", 0ms), backoff, 3, rng) == 0ms);
  CHECK(nak_delay(message_outcome::nak("source_retryable", "x"), backoff, 1, rng) == 1000ms);
  CHECK(nak_delay(message_outcome::nak("source_retryable", "x"), backoff, 3, rng) == 4000ms);
  CHECK(nak_delay(message_outcome::nak("source_retryable", "x"), backoff, 30, rng) == 60000ms);
}
