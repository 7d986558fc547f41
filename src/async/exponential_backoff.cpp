#include "async/exponential_backoff.hpp"

#include "async/random_seed.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <cmath>

namespace archie::async {

std::chrono::milliseconds backoff_delay_nominal(const backoff_policy& cfg, std::uint64_t deliveries) {
  double steps = static_cast<double>(std::max<std::uint64_t>(deliveries, 1) - 1);
  double ms = static_cast<double>(cfg.base.count()) * std::pow(cfg.multiplier, std::min(steps, 200.0));
  double ceiling = static_cast<double>(cfg.ceiling.count());
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::min(ms, ceiling)));
}

std::chrono::milliseconds backoff_delay(const backoff_policy& cfg, std::uint64_t deliveries, std::mt19937_64& rng) {
  auto nominal = backoff_delay_nominal(cfg, deliveries);
  if (cfg.jitter <= 0 || nominal.count() == 0) return nominal;
  std::uniform_real_distribution<double> spread(-cfg.jitter / 2, cfg.jitter / 2);
  double ms = static_cast<double>(nominal.count()) * (1.0 + spread(rng));
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::max(ms, 0.0)));
}

exponential_backoff::exponential_backoff(boost::asio::any_io_executor executor, backoff_policy cfg,
                                         std::optional<std::uint64_t> seed)
    : executor_(std::move(executor)), cfg_(cfg), seed_(seed) {}

boost::asio::awaitable<void> exponential_backoff::wait() {
  ++attempts_;
  if (!rng_) rng_.emplace(seed_.value_or(random_seed()));
  boost::asio::steady_timer timer(executor_, backoff_delay(cfg_, attempts_, *rng_));
  co_await timer.async_wait(boost::asio::use_awaitable);
}

}  // namespace archie::async
