#include "store/s3/credentials/refresh_schedule.hpp"

#include <doctest/doctest.h>

using namespace archie::store::s3;
using namespace std::chrono_literals;

namespace {
const wall_clock::time_point t0 = wall_clock::time_point{} + 1'000'000s;
}

TEST_CASE("one-hour credentials are refreshed 5 to 7.5 minutes before they expire, depending on jitter") {
  auto expiry = t0 + 1h;
  CHECK(refresh_due_at(t0, expiry, 0.0) == expiry - 5min);
  CHECK(refresh_due_at(t0, expiry, 1.0) == expiry - 7min - 30s);
  auto mid = refresh_due_at(t0, expiry, 0.5);
  CHECK(mid < expiry - 5min);
  CHECK(mid > expiry - 7min - 30s);
}

TEST_CASE("short-lived credentials are refreshed a quarter of their lifetime ahead") {
  auto expiry = t0 + 20s;
  CHECK(refresh_due_at(t0, expiry, 0.0) == expiry - 5s);
  CHECK(refresh_due_at(t0, expiry, 1.0) == expiry - 7500ms);
}

TEST_CASE("credentials already expired when fetched are due for refresh at once") {
  CHECK(refresh_due_at(t0, t0 - 10s, 0.3) == t0);
  CHECK(assess_credentials(t0, refresh_due_at(t0, t0 - 10s, 0.3), usable_until(t0, t0 - 10s)) ==
        cached_credentials_state::unusable);
}

TEST_CASE("credentials are used until the refresh time, kept through a failed refresh, and dropped near expiry") {
  auto expiry = t0 + 1h;
  auto refresh = refresh_due_at(t0, expiry, 0.0);
  auto until = usable_until(t0, expiry);
  CHECK(until == expiry - 1min);
  CHECK(assess_credentials(t0 + 10min, refresh, until) == cached_credentials_state::fresh);
  CHECK(assess_credentials(expiry - 4min, refresh, until) == cached_credentials_state::refresh_due);
  CHECK(assess_credentials(expiry - 30s, refresh, until) == cached_credentials_state::unusable);
  // 20-second credentials stop being used 2 s before expiry.
  CHECK(usable_until(t0, t0 + 20s) == t0 + 18s);
}
