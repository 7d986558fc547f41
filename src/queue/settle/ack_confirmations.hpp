#pragma once
// Acks the server confirms, without a thread per ack. nats.c's AckSync is a blocking request:
// one pool thread per ack in flight and two thread hand-offs each, which cost more CPU than
// copying a small object. Here every +ACK is published with its own reply subject under one
// wildcard inbox subscription, and the server's answer wakes the waiting coroutine on the
// io_context. Same guarantee as AckSync: true only once the server has the ack.
#include <nats/nats.h>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

namespace archie::queue {

class ack_confirmations : public std::enable_shared_from_this<ack_confirmations> {
 public:
  ack_confirmations(boost::asio::any_io_executor io, natsConnection* conn);
  ~ack_confirmations();
  ack_confirmations(const ack_confirmations&) = delete;
  ack_confirmations& operator=(const ack_confirmations&) = delete;

  /// Publishes +ACK for `msg` and waits for the server's answer: NATS_OK once confirmed,
  /// NATS_TIMEOUT after `timeout`, NATS_NO_RESPONDERS (no JetStream leader), or the error
  /// that kept it from being sent. Call on the io_context's thread.
  boost::asio::awaitable<natsStatus> ack(natsMsg* msg, std::chrono::milliseconds timeout);

  /// Stops listening; acks still waiting end as timed out. Blocks until nats.c has stopped
  /// calling back (call off the io thread, or at shutdown).
  void close();

 private:
  struct waiter;
  natsStatus listen();
  static void on_reply(natsConnection*, natsSubscription*, natsMsg* raw, void* closure);
  void confirm(std::uint64_t token, natsStatus status);

  boost::asio::any_io_executor io_;
  natsConnection* conn_;
  natsSubscription* sub_ = nullptr;
  std::string prefix_;  ///< "<inbox>." : a reply subject is the prefix and a token
  std::uint64_t next_token_ = 0;
  std::unordered_map<std::uint64_t, waiter*> waiting_;  ///< io thread only
};

}  // namespace archie::queue
