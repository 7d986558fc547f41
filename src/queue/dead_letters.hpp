#pragma once
// The dead-letter stream as an operator sees it: the messages archie gave up on, with the
// reason headers pull_consumer put on them (Archie-Term-Code, Archie-Term-Reason, ...), read
// one by one by sequence, republished to their original subject, or deleted. Blocking
// (JetStream API requests): call from a plain thread, never an io_context thread.
#include "config/config.hpp"

#include <nats/nats.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace archie::queue {

/// `<queue.stream.name>-dead-letter`, the stream provisioning creates for dead_letter_subject.
std::string dead_letter_stream_name(const config::queue_config& cfg);

struct dead_letter {
  std::uint64_t sequence = 0;  ///< in the dead-letter stream
  std::chrono::system_clock::time_point stored;
  std::string code;    ///< Archie-Term-Code
  std::string reason;  ///< Archie-Term-Reason
  std::string original_subject;
  std::string original_stream;
  std::uint64_t original_sequence = 0;
  std::uint64_t deliveries = 0;
  bool truncated = false;  ///< the body was cut to fit: it cannot be replayed
  std::string data;
};

/// Which dead letters a command applies to; unset members match everything.
struct dead_letter_filter {
  std::optional<std::string> code;
  std::optional<std::chrono::system_clock::time_point> since;
  std::uint64_t first_sequence = 0;
  std::uint64_t last_sequence = UINT64_MAX;
  bool matches(const dead_letter& d) const;
};

class dead_letter_stream {
 public:
  dead_letter_stream(jsCtx* js, const config::queue_config& cfg) : js_(js), cfg_(cfg) {}
  /// Calls `visit` for each stored dead letter matching `filter`, oldest first, until it
  /// returns false. Throws nats_error (the stream is missing, the server refused).
  void for_each(const dead_letter_filter& filter, const std::function<bool(const dead_letter&)>& visit);
  /// Publishes the body to its original subject (else the stream's first subject) with the
  /// header Archie-Replayed-From: <sequence>, waits for JetStream's acknowledgement, and only
  /// then deletes it here: a failure leaves it in place. Throws nats_error.
  void replay(const dead_letter& d);
  /// Deletes one dead letter. Throws nats_error.
  void remove(std::uint64_t sequence);

 private:
  jsCtx* js_;
  const config::queue_config& cfg_;
};

}  // namespace archie::queue
