#include "queue/settle/ack_confirmations.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <charconv>
#include <cstring>

namespace archie::queue {
namespace asio = boost::asio;

struct ack_confirmations::waiter {
  explicit waiter(asio::any_io_executor io, std::chrono::milliseconds timeout) : timer(io, timeout) {}
  asio::steady_timer timer;         ///< cancelled by the answer; expiry is the timeout
  natsStatus status = NATS_TIMEOUT;
};

ack_confirmations::ack_confirmations(asio::any_io_executor io, natsConnection* conn) : io_(std::move(io)), conn_(conn) {}

ack_confirmations::~ack_confirmations() { close(); }

natsStatus ack_confirmations::listen() {
  if (sub_) return NATS_OK;
  natsInbox* box = nullptr;
  natsStatus s = natsInbox_Create(&box);
  if (s != NATS_OK) return s;
  std::string inbox = box;
  natsInbox_Destroy(box);
  prefix_ = inbox + ".";  // before the subscription exists: on_reply reads it on nats.c's thread
  s = natsConnection_Subscribe(&sub_, conn_, (inbox + ".*").c_str(), &ack_confirmations::on_reply, this);
  if (s != NATS_OK) {
    sub_ = nullptr;
    return s;
  }
  // Answers are tiny and must never be dropped by the client-side limit.
  natsSubscription_SetPendingLimits(sub_, -1, -1);
  return NATS_OK;
}

void ack_confirmations::close() {
  if (!sub_) return;
  if (natsSubscription_Drain(sub_) == NATS_OK) natsSubscription_WaitForDrainCompletion(sub_, 2000);
  natsSubscription_Destroy(sub_);
  sub_ = nullptr;
}

asio::awaitable<natsStatus> ack_confirmations::ack(natsMsg* msg, std::chrono::milliseconds timeout) {
  const char* to = natsMsg_GetReply(msg);
  if (!to || !*to) co_return NATS_ILLEGAL_STATE;  // not a JetStream message
  if (natsStatus s = listen(); s != NATS_OK) co_return s;
  const std::uint64_t token = ++next_token_;
  const std::string reply = prefix_ + std::to_string(token);
  waiter w(io_, timeout);
  waiting_.emplace(token, &w);
  natsStatus sent = natsConnection_PublishRequest(conn_, to, reply.c_str(), "+ACK", 4);
  if (sent != NATS_OK) {
    waiting_.erase(token);
    co_return sent;
  }
  co_await w.timer.async_wait(asio::as_tuple(asio::use_awaitable));
  waiting_.erase(token);
  co_return w.status;
}

// nats.c's delivery thread: the server's answer to one ack.
void ack_confirmations::on_reply(natsConnection*, natsSubscription*, natsMsg* raw, void* closure) {
  auto* self = static_cast<ack_confirmations*>(closure);
  const char* subject = natsMsg_GetSubject(raw);
  std::uint64_t token = 0;
  bool parsed = false;
  if (subject && std::strncmp(subject, self->prefix_.c_str(), self->prefix_.size()) == 0) {
    const char* digits = subject + self->prefix_.size();
    const char* end = digits + std::strlen(digits);
    auto [ptr, ec] = std::from_chars(digits, end, token);
    parsed = ec == std::errc() && ptr == end;
  }
  natsStatus status = natsMsg_IsNoResponders(raw) ? NATS_NO_RESPONDERS : NATS_OK;
  natsMsg_Destroy(raw);
  if (!parsed) return;
  asio::post(self->io_, [weak = self->weak_from_this(), token, status] {
    if (auto me = weak.lock()) me->confirm(token, status);
  });
}

void ack_confirmations::confirm(std::uint64_t token, natsStatus status) {
  auto it = waiting_.find(token);
  if (it == waiting_.end()) return;  // answered after its timeout: the retry has its own token
  it->second->status = status;
  it->second->timer.cancel();
}

}  // namespace archie::queue
