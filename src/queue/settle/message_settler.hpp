#pragma once
// What happens to a message after its handler, in one place (the files of queue/settle/):
//   1. The handler returns a message_outcome (message_outcome.hpp): ack, nak or term, with a
//      code and a reason.
//   2. settlement.hpp decides, without I/O, what goes on the wire: the nak's delay (the
//      exponential backoff for its delivery count), and for a term whether it is dead-lettered
//      first and what happens when the dead letter cannot be published.
//   3. message_settler (this class) sends exactly one acknowledgement: a term publishes the
//      dead letter first (to queue.dead_letter_subject, the reasons in its headers); +ACK,
//      -NAK and +TERM are written by hand to the reply subject (jetstream_ack.hpp); an ack
//      whose loss would redo work waits for the server's confirmation
//      (ack_confirmations.hpp, queue.ack_mode = "sync").
//   4. The message is freed in a batch with others (message_reaper.hpp).
// A message that is never settled (crash, kill -9) is redelivered by JetStream after ack_wait.
#include "config/config.hpp"
#include "queue/settle/ack_confirmations.hpp"
#include "queue/settle/message_outcome.hpp"
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
