#pragma once
// When to refresh temporary credentials: decisions only, no clock and no I/O, so the timing
// is unit-tested. Like the AWS SDKs, credentials are refreshed well ahead of their expiry
// (a request signed a moment before expiry may still be in flight when they lapse), with
// jitter so the replicas of a Deployment do not all call STS in the same second; close to
// expiry they are no longer used at all.
#include <chrono>

namespace archie::store::s3 {

using wall_clock = std::chrono::system_clock;

/// Advisory margin: min(5 min, a quarter of the lifetime). Refresh is due at
/// expiration - margin - jitter * margin / 2 (jitter in [0, 1]), so between 1 and 1.5
/// margins before expiry; never before fetched_at.
wall_clock::time_point refresh_due_at(wall_clock::time_point fetched_at, wall_clock::time_point expiration,
                                      double jitter);

/// Mandatory margin: min(1 min, a tenth of the lifetime). Inside it the credentials are not
/// used even when a refresh failed: a request would reach the server after they lapsed.
wall_clock::time_point usable_until(wall_clock::time_point fetched_at, wall_clock::time_point expiration);

enum class cached_credentials_state {
  fresh,        ///< use them
  refresh_due,  ///< fetch new ones; if that fails, these may still be used
  unusable,     ///< fetch new ones; if that fails, the request fails
};

cached_credentials_state assess_credentials(wall_clock::time_point now, wall_clock::time_point refresh_at,
                                            wall_clock::time_point usable_until);

}  // namespace archie::store::s3
