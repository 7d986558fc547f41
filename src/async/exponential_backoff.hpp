#pragma once
// Exponential backoff: the nak delay for a message on its Nth delivery, and an awaiter that
// sleeps between bounded retries of one operation (e.g. a lost ack).
#include "async/backoff_policy.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <random>

namespace archie::async {

/// min(ceiling, base * multiplier^(deliveries-1)), then spread by +-jitter/2 of itself so a
/// burst of failures does not come back as a burst. deliveries counts from 1.
std::chrono::milliseconds backoff_delay(const backoff_policy& cfg, std::uint64_t deliveries, std::mt19937_64& rng);

/// The same curve without jitter: the bounds tests and docs quote.
std::chrono::milliseconds backoff_delay_nominal(const backoff_policy& cfg, std::uint64_t deliveries);

/// `co_await backoff.wait()` sleeps for the next step; attempts() tells how many were taken.
/// Built per request, and most requests never wait: the generator is seeded on the first wait.
class exponential_backoff {
 public:
  exponential_backoff(boost::asio::any_io_executor executor, backoff_policy cfg, std::optional<std::uint64_t> seed = {});
  boost::asio::awaitable<void> wait();
  std::uint64_t attempts() const { return attempts_; }

 private:
  boost::asio::any_io_executor executor_;
  backoff_policy cfg_;
  std::optional<std::uint64_t> seed_;
  std::optional<std::mt19937_64> rng_;
  std::uint64_t attempts_ = 0;
};

}  // namespace archie::async
