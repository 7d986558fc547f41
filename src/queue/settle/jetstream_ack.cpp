#include "queue/settle/jetstream_ack.hpp"

namespace archie::queue::jetstream_ack {
namespace {

natsStatus send(natsConnection* nc, natsMsg* msg, const char* body) {
  const char* reply = natsMsg_GetReply(msg);
  if (!reply || !*reply) return NATS_ILLEGAL_STATE;  // not a JetStream message
  return natsConnection_PublishString(nc, reply, body);
}

}  // namespace

std::string nak_body(std::chrono::milliseconds delay) {
  if (delay.count() <= 0) return "-NAK";
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(delay).count();
  return "-NAK {\"delay\":" + std::to_string(ns) + "}";
}

natsStatus ack(natsConnection* nc, natsMsg* msg) { return send(nc, msg, "+ACK"); }

natsStatus nak(natsConnection* nc, natsMsg* msg, std::chrono::milliseconds delay) {
  std::string body = nak_body(delay);
  return send(nc, msg, body.c_str());
}

natsStatus in_progress(natsConnection* nc, natsMsg* msg) { return send(nc, msg, "+WPI"); }

natsStatus term(natsConnection* nc, natsMsg* msg) { return send(nc, msg, "+TERM"); }

}  // namespace archie::queue::jetstream_ack
