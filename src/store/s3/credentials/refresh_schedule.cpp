#include "store/s3/credentials/refresh_schedule.hpp"

#include <algorithm>

namespace archie::store::s3 {
using namespace std::chrono_literals;

namespace {

wall_clock::duration lifetime_of(wall_clock::time_point fetched_at, wall_clock::time_point expiration) {
  return std::max(wall_clock::duration::zero(), expiration - fetched_at);
}

}  // namespace

wall_clock::time_point refresh_due_at(wall_clock::time_point fetched_at, wall_clock::time_point expiration,
                                      double jitter) {
  auto margin = std::min<wall_clock::duration>(5min, lifetime_of(fetched_at, expiration) / 4);
  jitter = std::clamp(jitter, 0.0, 1.0);
  auto extra = std::chrono::duration_cast<wall_clock::duration>(margin * (jitter / 2));
  return std::max(fetched_at, expiration - margin - extra);
}

wall_clock::time_point usable_until(wall_clock::time_point fetched_at, wall_clock::time_point expiration) {
  auto margin = std::min<wall_clock::duration>(1min, lifetime_of(fetched_at, expiration) / 10);
  return expiration - margin;
}

cached_credentials_state assess_credentials(wall_clock::time_point now, wall_clock::time_point refresh_at,
                                            wall_clock::time_point usable_until) {
  if (now >= usable_until) return cached_credentials_state::unusable;
  if (now >= refresh_at) return cached_credentials_state::refresh_due;
  return cached_credentials_state::fresh;
}

}  // namespace archie::store::s3
