#pragma once
// The fetch side of the pipeline. Pull requests for the free worker slots stay open at the
// server (so a worker never holds messages it cannot start, other replicas get the rest, and
// a message is handed over the moment it arrives: queue/pull_window.hpp); `concurrency`
// worker coroutines take them from an Asio channel, and each message ends with exactly one
// ack, nak (exponential backoff by delivery count) or term (dead-lettered first:
// queue/settle/message_settler.hpp). Long handlers send in-progress heartbeats every ack_wait/3.
// A message whose handler allows it (queue_message::allow_stepping_aside) and that has run
// for 250 ms (or at once, when its handler knows its destinations are slow) stops counting
// against `concurrency`, up to `concurrency` such messages: a destination that answers slowly
// does not keep the worker from fetching other routes' work.
#include "config/config.hpp"
#include "queue/settle/message_outcome.hpp"
#include "queue/nats_connection.hpp"
#include "queue/queue_message.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>

namespace archie::queue {

using message_handler = std::function<boost::asio::awaitable<message_outcome>(queue_message&)>;

struct consumer_options {
  std::size_t concurrency = 16;
  std::chrono::milliseconds message_timeout{3'600'000};
};

class pull_consumer {
 public:
  pull_consumer(boost::asio::any_io_executor io, boost::asio::thread_pool& blocking, nats_connection& conn,
                const config::queue_config& cfg, consumer_options opts, message_handler handler);
  ~pull_consumer();

  /// Binds the pull subscription to the durable consumer, then starts fetching and working.
  /// Throws nats_error when the consumer does not exist or cannot be bound.
  boost::asio::awaitable<void> start();
  /// Stops fetching; waits for in-flight messages until `deadline`; cancels and naks (no
  /// delay) whatever is left so another worker gets it at once.
  boost::asio::awaitable<void> drain(std::chrono::steady_clock::time_point deadline);
  /// While paused, no new messages are fetched (e.g. a destination is down).
  void set_paused(bool paused);
  std::size_t in_flight() const;

 private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

}  // namespace archie::queue
