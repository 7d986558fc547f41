#include "queue/settle/message_reaper.hpp"

#include <boost/asio/post.hpp>

namespace archie::queue {

message_reaper::~message_reaper() { free_batch(); }

void message_reaper::free(natsMsg* msg) {
  bool opened;
  {
    std::lock_guard lock(mutex_);
    batch_.push_back(msg);
    opened = batch_.size() == 1;
  }
  if (opened) boost::asio::post(io_, [weak = weak_from_this()] {
      if (auto self = weak.lock()) self->free_batch();
    });
}

void message_reaper::free_batch() {
  std::vector<natsMsg*> taken;
  {
    std::lock_guard lock(mutex_);
    taken.swap(batch_);
  }
  for (natsMsg* m : taken) natsMsg_Destroy(m);
}

}  // namespace archie::queue
