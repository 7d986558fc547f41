#pragma once
// JetStream acknowledgements sent by hand to a message's reply subject ($JS.ACK...). The
// consumer receives messages on a plain subscription (its own pull requests), which nats.c's
// natsMsg_Ack family refuses to serve, so the protocol bodies are written here: +ACK, -NAK
// (with a delay), +WPI, +TERM. Non-blocking; acks the server confirms are
// ack_confirmations.hpp.
#include <nats/nats.h>

#include <chrono>
#include <string>

namespace archie::queue::jetstream_ack {

natsStatus ack(natsConnection* nc, natsMsg* msg);
/// Redelivery after `delay` (0: at once).
natsStatus nak(natsConnection* nc, natsMsg* msg, std::chrono::milliseconds delay);
natsStatus in_progress(natsConnection* nc, natsMsg* msg);
natsStatus term(natsConnection* nc, natsMsg* msg);

/// The -NAK body for a delay: "-NAK" or "-NAK {\"delay\":<nanoseconds>}".
std::string nak_body(std::chrono::milliseconds delay);

}  // namespace archie::queue::jetstream_ack
