#pragma once
// The I/O half of settlement: a handler's outcome goes out as exactly one ack, nak (with its
// backoff delay) or term, a term being dead-lettered first. What to send is decided by the
// pure functions of queue/settlement.hpp; this class only talks to NATS.
#include "config/config.hpp"
#include "queue/ack_confirmations.hpp"
#include "queue/message_outcome.hpp"
#include "queue/nats_connection.hpp"
#include "queue/queue_message.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>

#include <memory>
#include <random>

namespace archie::queue {

class message_settler {
 public:
  message_settler(boost::asio::any_io_executor io, boost::asio::thread_pool& blocking, nats_connection& conn,
                  const config::queue_config& cfg);

  /// Sends the one acknowledgement `decided` calls for; never throws.
  boost::asio::awaitable<void> settle(queue_message& msg, const message_outcome& decided);
  /// Hands a message straight back for immediate redelivery (shutdown, no room to start it).
  void give_back(queue_message& msg);

 private:
  boost::asio::awaitable<bool> ack(queue_message& msg, bool confirm);
  boost::asio::awaitable<bool> dead_letter(queue_message& msg, const message_outcome& outcome);

  boost::asio::any_io_executor io_;
  boost::asio::thread_pool& blocking_;
  nats_connection& conn_;
  const config::queue_config& cfg_;
  std::mt19937_64 rng_{std::random_device{}()};
  std::shared_ptr<ack_confirmations> confirmations_;  ///< created on the first confirmed ack
};

}  // namespace archie::queue
