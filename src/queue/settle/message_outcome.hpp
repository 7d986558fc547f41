#pragma once
// What a handler decided for a message. The consumer turns it into exactly one JetStream
// acknowledgement.
#include <chrono>
#include <optional>
#include <string>

namespace archie::queue {

struct message_outcome {
  enum class kind { ack, nak, term };
  kind what = kind::ack;
  /// Short machine-readable cause ("source_not_found", "malformed_event"): a metric label,
  /// so it must come from a fixed set.
  std::string code = "ok";
  /// Human-readable detail for logs and the dead-letter headers. Never a secret.
  std::string reason;
  /// nak only: explicit delay; when empty the exponential backoff for the delivery count applies.
  std::optional<std::chrono::milliseconds> delay;
  /// ack only: a lost ack would make the redelivery redo real work (a copy, a delete), so
  /// queue.ack_mode = "sync" waits for the server to confirm it. An event that did nothing
  /// (skipped, excluded, already equal) needs no confirmation: its redelivery is as cheap.
  bool confirm = true;

  static message_outcome ack(std::string code = "ok") { return {kind::ack, std::move(code), {}, {}, true}; }
  /// An ack for an event that wrote nothing: sent without waiting for the server.
  static message_outcome ack_without_work(std::string code) {
    return {kind::ack, std::move(code), {}, {}, false};
  }
  static message_outcome nak(std::string code, std::string reason, std::optional<std::chrono::milliseconds> delay = {}) {
    return {kind::nak, std::move(code), std::move(reason), delay, true};
  }
  static message_outcome term(std::string code, std::string reason) {
    return {kind::term, std::move(code), std::move(reason), {}, true};
  }
};

/// "ack", "nak" or "term": log fields and metric labels.
inline const char* to_string(message_outcome::kind k) {
  switch (k) {
    case message_outcome::kind::ack: return "ack";
    case message_outcome::kind::nak: return "nak";
    case message_outcome::kind::term: return "term";
  }
  return "ack";
}

}  // namespace archie::queue
