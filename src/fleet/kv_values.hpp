#pragma once
// Every value of a JetStream key-value bucket, read once: how `archie status` reads the
// worker registry and the runs bucket.
#include <nats/nats.h>

#include <string>
#include <vector>

namespace archie::fleet {

/// The values of every key, in key order; empty when the bucket does not exist. Keys that
/// vanish between the listing and the read (an expired entry) are skipped. Blocking; throws
/// nats_error.
std::vector<std::string> read_all_values(jsCtx* js, const std::string& bucket);

}  // namespace archie::fleet
