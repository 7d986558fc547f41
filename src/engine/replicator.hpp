#pragma once
// The replication engine: one message in, one outcome out. Decodes MinIO's event, routes
// each record, makes every destination converge to the source (copy server-side within the
// source store, otherwise through the fan-out pipe; remove; re-check the source), and maps
// every failure to ack / nak / term. The stores come from the caller (a store_set, or fakes).
#include "config/config.hpp"
#include "fleet/budget_book.hpp"
#include "queue/settle/message_outcome.hpp"
#include "queue/queue_message.hpp"
#include "store/store_catalog.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <memory>

namespace archie::engine {

class replicator {
 public:
  /// `budgets` (optional) holds the destination stores' transfer slots (fleet budgets).
  replicator(boost::asio::any_io_executor io, const config::config& cfg, store::store_catalog& stores,
             fleet::budget_book* budgets = nullptr);
  ~replicator();

  boost::asio::awaitable<queue::message_outcome> handle(queue::queue_message& msg);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace archie::engine
