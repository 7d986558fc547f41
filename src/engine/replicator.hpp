#pragma once
// The replication engine: one message in, one outcome out. Decodes MinIO's event, routes
// each record, copies (server-side when source and destination are the same S3 store,
// otherwise through the fan-out pipe) or removes, and maps every failure to ack / nak / term.
#include "config/config.hpp"
#include "queue/message_outcome.hpp"
#include "queue/queue_message.hpp"
#include "health/readiness.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>

#include <memory>

namespace archie::engine {

class replicator {
 public:
  /// Builds every store client and the router. Throws std::runtime_error naming the store
  /// or route that cannot be used (e.g. a gcs store in this build).
  replicator(boost::asio::any_io_executor io, boost::asio::thread_pool& blocking, const config::config& cfg);
  ~replicator();

  boost::asio::awaitable<queue::message_outcome> handle(queue::queue_message& msg);
  /// One check per store used by a route (HEAD bucket), refreshed in the background.
  void register_checks(health::readiness& ready);
  /// Starts the periodic store checks.
  void start_health_checks();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace archie::engine
