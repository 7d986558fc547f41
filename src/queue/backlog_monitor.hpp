#pragma once
// The durable consumer's backlog as JetStream counts it, polled from the server and exported
// as gauges, so alerts on a growing, aging or stalled backlog work without a NATS exporter.
// Every worker polls and exports the same numbers: aggregate them with max(), never sum().
#include "async/periodic_loop.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>

#include <nats/nats.h>

#include <chrono>
#include <cstdint>
#include <string>

namespace archie::queue {

/// One reading of the consumer and its stream.
struct backlog_snapshot {
  std::uint64_t pending = 0;               ///< stored for the consumer, not yet delivered
  std::int64_t ack_pending = 0;            ///< delivered, not yet acked (in flight or in nak backoff)
  std::int64_t redelivered = 0;            ///< of those, delivered more than once
  std::uint64_t delivered_stream_seq = 0;  ///< last stream sequence handed to the consumer
  std::uint64_t stream_last_seq = 0;       ///< last sequence stored in the stream
  double oldest_unacked_age_seconds = 0;   ///< 0 when nothing is outstanding
};

/// Reads the snapshot with JetStream API requests (blocking: call it on the blocking pool).
/// Throws nats_error naming the failed request.
backlog_snapshot read_backlog(jsCtx* js, const std::string& stream, const std::string& durable,
                              std::chrono::system_clock::time_point now);

/// Polls read_backlog every `interval` off the I/O thread and publishes the gauges. A failed
/// poll keeps the last values, counts archie_consumer_info_errors_total and logs once per
/// outage. Lives on the io executor; stop() ends the loop and waits for a poll in progress,
/// so the NATS connection may be closed afterwards.
class backlog_monitor {
 public:
  backlog_monitor(boost::asio::any_io_executor io, boost::asio::thread_pool& blocking, jsCtx* js, std::string stream,
                  std::string durable, std::chrono::milliseconds interval);
  backlog_monitor(const backlog_monitor&) = delete;
  backlog_monitor& operator=(const backlog_monitor&) = delete;

  /// The polling loop; co_spawn it on the io executor.
  boost::asio::awaitable<void> run();
  /// Ends run() and returns once it has finished.
  boost::asio::awaitable<void> stop();

 private:
  boost::asio::thread_pool& blocking_;
  jsCtx* js_;
  std::string stream_;
  std::string durable_;
  async::periodic_loop loop_;
};

}  // namespace archie::queue
