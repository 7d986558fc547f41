#include "async/exponential_backoff.hpp"

#include <doctest/doctest.h>

using namespace std::chrono_literals;
using archie::async::backoff_delay;
using archie::async::backoff_delay_nominal;

TEST_CASE("the nak delay grows with the delivery count up to the ceiling") {
  archie::async::backoff_policy c{1000ms, 2.0, 10000ms, 0.0};
  CHECK(backoff_delay_nominal(c, 1) == 1000ms);
  CHECK(backoff_delay_nominal(c, 2) == 2000ms);
  CHECK(backoff_delay_nominal(c, 4) == 8000ms);
  CHECK(backoff_delay_nominal(c, 5) == 10000ms);
  CHECK(backoff_delay_nominal(c, 1000000) == 10000ms);
  CHECK(backoff_delay_nominal(c, 0) == 1000ms);
}

TEST_CASE("jitter spreads delays within +-jitter/2 of the nominal value") {
  archie::async::backoff_policy c{1000ms, 2.0, 60000ms, 0.2};
  std::mt19937_64 rng(7);
  bool varied = false;
  auto first = backoff_delay(c, 3, rng);
  for (int i = 0; i < 1000; ++i) {
    auto d = backoff_delay(c, 3, rng);
    CHECK(d >= 3600ms);
    CHECK(d <= 4400ms);
    varied = varied || d != first;
  }
  CHECK(varied);
}
