#include "async/rate_limiter.hpp"

#include <doctest/doctest.h>

#include <chrono>

using archie::async::rate_limiter;
using namespace std::chrono;

namespace {

double seconds_between(rate_limiter::clock::time_point a, rate_limiter::clock::time_point b) {
  return duration<double>(b - a).count();
}

}  // namespace

TEST_CASE("an unlimited budget never makes anyone wait") {
  rate_limiter r;
  const auto now = rate_limiter::clock::now();
  for (int i = 0; i < 1000; ++i) CHECK(r.reserve(1e9, now) == now);
}

TEST_CASE("callers asking at once are paced at the rate, in the order they asked") {
  rate_limiter r(milliseconds(0));
  r.set_rate(100);  // 100 units/s: 10 ms per unit
  const auto now = rate_limiter::clock::now() + hours(1);
  CHECK(r.reserve(1, now) == now);
  CHECK(seconds_between(now, r.reserve(1, now)) == doctest::Approx(0.01));
  CHECK(seconds_between(now, r.reserve(5, now)) == doctest::Approx(0.02));
  CHECK(seconds_between(now, r.reserve(1, now)) == doctest::Approx(0.07));
}

TEST_CASE("what goes out over a long busy spell is the rate times the time, plus one burst") {
  rate_limiter r(milliseconds(100));
  r.set_rate(20e6);
  const auto start = rate_limiter::clock::now() + hours(1);
  const double chunk = 1e6 * 0.05;
  double sent_by_20s = 0;
  // Callers that go as soon as they may: each asks again the moment it was let through.
  auto t = start;
  while (true) {
    t = r.reserve(chunk, t);
    if (t - start >= seconds(20)) break;
    sent_by_20s += chunk;
  }
  CHECK(sent_by_20s <= 20e6 * 20 + 20e6 * 0.1 + chunk);
  CHECK(sent_by_20s >= 20e6 * 20 - chunk);
}

TEST_CASE("an idle budget banks at most its burst") {
  rate_limiter r(milliseconds(100));
  r.set_rate(10);
  const auto now = rate_limiter::clock::now() + hours(1);
  r.reserve(1, now);
  const auto later = now + minutes(10);
  // One unit of burst (0.1 s at 10/s) is free; the second waits its 0.1 s.
  CHECK(r.reserve(1, later) == later);
  CHECK(r.reserve(1, later) == later);
  CHECK(seconds_between(later, r.reserve(1, later)) == doctest::Approx(0.1));
}

TEST_CASE("a new rate applies to the next reservation") {
  rate_limiter r(milliseconds(0));
  r.set_rate(1);
  const auto now = rate_limiter::clock::now() + hours(1);
  r.reserve(1, now);  // spends up to now + 1 s
  r.set_rate(1000);
  CHECK(seconds_between(now, r.reserve(1, now)) == doctest::Approx(1.0));
  CHECK(seconds_between(now, r.reserve(1, now)) == doctest::Approx(1.001));
  r.set_rate(0);
  CHECK_FALSE(r.limited());
  CHECK(r.reserve(1e12, now) == now);
}
