#pragma once
// One JetStream message on loan to a worker: its payload, its delivery context, and the
// single outcome it will get (ack, nak or term). Owns the natsMsg.
#include <nats/nats.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace archie::queue {

class message_reaper;

/// How long a message that may step aside runs before it does (unless its handler asks to
/// step aside at once: queue_message::allow_stepping_aside).
inline constexpr std::chrono::milliseconds step_aside_after{250};

struct delivery_info {
  std::uint64_t stream_sequence = 0;
  std::uint64_t consumer_sequence = 0;
  std::uint64_t deliveries = 1;  ///< 1 on first delivery
  std::uint64_t pending = 0;
  std::chrono::system_clock::time_point published;  ///< when the stream stored it
};

class queue_message {
 public:
  /// `reaper`, when given, frees the message in a batch (queue/settle/message_reaper.hpp).
  explicit queue_message(natsMsg* msg, std::shared_ptr<message_reaper> reaper = {});
  queue_message(queue_message&&) noexcept = default;
  queue_message& operator=(queue_message&&) noexcept = default;

  std::string_view subject() const;
  /// The payload, valid as long as this object lives; no copy.
  std::string_view data() const;
  const delivery_info& delivery() const { return info_; }
  /// A NATS header's value; empty when absent.
  std::string_view header(const char* name) const;
  natsMsg* raw() const { return msg_.get(); }

  /// The handler says the message now waits only on destinations that other routes do not
  /// write to: once it has run a while, the consumer may stop counting it against
  /// worker.concurrency (queue/pull_consumer.hpp), so a slow destination does not hold the
  /// slots other routes could use. `at_once` when those destinations are known to be slow:
  /// the message would step aside later anyway, so its slot is better freed now.
  void allow_stepping_aside(bool at_once = false) {
    may_step_aside_ = true;
    if (at_once && step_aside_now_) step_aside_now_();
  }
  bool may_step_aside() const { return may_step_aside_; }
  /// Set by the consumer while a handler works on the message: steps it aside at once.
  void on_step_aside_now(std::function<void()> f) { step_aside_now_ = std::move(f); }

 private:
  struct msg_deleter {
    std::shared_ptr<message_reaper> reaper;
    void operator()(natsMsg* m) const;
  };
  std::unique_ptr<natsMsg, msg_deleter> msg_;
  delivery_info info_;
  bool may_step_aside_ = false;
  std::function<void()> step_aside_now_;
};

}  // namespace archie::queue
