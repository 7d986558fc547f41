#include "queue/queue_message.hpp"

#include "queue/settle/message_reaper.hpp"

namespace archie::queue {

void queue_message::msg_deleter::operator()(natsMsg* m) const {
  if (reaper) reaper->free(m);
  else natsMsg_Destroy(m);
}

queue_message::queue_message(natsMsg* msg, std::shared_ptr<message_reaper> reaper)
    : msg_(msg, msg_deleter{std::move(reaper)}) {
  jsMsgMetaData* meta = nullptr;
  if (natsMsg_GetMetaData(&meta, msg) == NATS_OK && meta) {
    info_.stream_sequence = meta->Sequence.Stream;
    info_.consumer_sequence = meta->Sequence.Consumer;
    info_.deliveries = meta->NumDelivered;
    info_.pending = meta->NumPending;
    info_.published = std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::nanoseconds(meta->Timestamp)));
    jsMsgMetaData_Destroy(meta);
  }
}

std::string_view queue_message::subject() const {
  const char* s = natsMsg_GetSubject(msg_.get());
  return s ? s : "";
}

std::string_view queue_message::header(const char* name) const {
  const char* value = nullptr;
  if (natsMsgHeader_Get(msg_.get(), name, &value) != NATS_OK || !value) return {};
  return value;
}

std::string_view queue_message::data() const {
  return {natsMsg_GetData(msg_.get()), static_cast<std::size_t>(natsMsg_GetDataLength(msg_.get()))};
}

}  // namespace archie::queue
