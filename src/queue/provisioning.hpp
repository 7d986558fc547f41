#pragma once
// Makes the JetStream stream and durable pull consumer match [queue.stream] and
// [queue.consumer]: creates them when missing, updates only what drifted (logging each
// difference), and reports the server's own error text when it refuses a change.
#include "config/config.hpp"

#include <nats/nats.h>

#include <string>
#include <vector>

namespace archie::queue {

enum class provision_action { unchanged, created, updated };

struct provision_result {
  provision_action stream = provision_action::unchanged;
  provision_action consumer = provision_action::unchanged;
  std::vector<std::string> differences;  ///< "stream.max_age: 0 -> 86400000000000"
};

/// Blocking (JetStream API requests): run on the blocking pool. Throws nats_error.
provision_result provision(jsCtx* js, const config::queue_config& cfg);

}  // namespace archie::queue
