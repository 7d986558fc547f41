#pragma once
// Frees received messages in batches. nats.c hands every freed message to its garbage
// collector thread and wakes that thread whenever its list was empty, so freeing messages one
// at a time costs a futex wake and a context switch each: a fifth of the io thread's time on
// a stream of skipped events. Messages freed while a batch is open join it, and one handler
// posted to the io_context frees the whole batch (one wake).
#include <nats/nats.h>

#include <boost/asio/any_io_executor.hpp>

#include <memory>
#include <mutex>
#include <vector>

namespace archie::queue {

class message_reaper : public std::enable_shared_from_this<message_reaper> {
 public:
  explicit message_reaper(boost::asio::any_io_executor io) : io_(std::move(io)) {}
  ~message_reaper();  ///< frees what is still waiting
  message_reaper(const message_reaper&) = delete;
  message_reaper& operator=(const message_reaper&) = delete;

  /// Takes ownership of `msg`; any thread.
  void free(natsMsg* msg);

 private:
  void free_batch();

  boost::asio::any_io_executor io_;
  std::mutex mutex_;
  std::vector<natsMsg*> batch_;
};

}  // namespace archie::queue
