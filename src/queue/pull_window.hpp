#pragma once
// How many messages to ask JetStream for, and when. The consumer keeps pull requests open
// for its free worker slots, so a message is handed to a worker the moment the server sends
// it (the pull protocol's "consume" mode), rather than when a batch fills or a pull expires.
// The server does not say which request a message answered, so the window counts in
// aggregate: requested, minus delivered, minus what an ended request (408/409) reports as
// undelivered. A server that goes quiet past two idle heartbeats has lost our requests
// (reconnect, leader change): they are forgotten and asked again. Pure and unit-tested; the
// consumer holds it under a lock and does the I/O.
#include <chrono>
#include <cstddef>
#include <optional>

namespace archie::queue {

class pull_window {
 public:
  using clock = std::chrono::steady_clock;

  struct limits {
    std::size_t slots = 16;      ///< worker slots: never more messages than this at once
    std::size_t max_batch = 256;  ///< the largest single request
    std::size_t refill_at = 4;    ///< free, unrequested slots that make a request worth sending
    std::chrono::milliseconds heartbeat{1000};  ///< idle heartbeat asked of the server
  };

  explicit pull_window(limits l);

  /// The batch to request now, already counted as outstanding (0: nothing to ask for).
  std::size_t take_request(clock::time_point now, bool may_pull);
  /// A request could not be sent: it is not outstanding after all.
  void request_not_sent(std::size_t batch);
  /// A message arrived. False when it does not fit the free slots (the server sent more than
  /// asked, e.g. a request we had given up on): the caller hands it straight back.
  bool message_arrived(clock::time_point now);
  /// A worker slot became free.
  void slot_freed();
  /// A request ended (408 Request Timeout, 409): `undelivered` from Nats-Pending-Messages;
  /// unknown means every request is forgotten (asking again is safe, the extra is handed back).
  void request_ended(clock::time_point now, std::optional<std::size_t> undelivered);
  /// The server's idle heartbeat: our requests are alive.
  void heartbeat(clock::time_point now);
  /// Forgets every request when the server has been silent too long; true when it did.
  bool forget_if_silent(clock::time_point now);

  std::size_t outstanding() const { return outstanding_; }
  std::size_t free_slots() const { return free_; }

 private:
  limits limits_;
  std::size_t free_;
  std::size_t outstanding_ = 0;
  clock::time_point last_heard_{};
};

}  // namespace archie::queue
