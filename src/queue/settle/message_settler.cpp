#include "queue/settle/message_settler.hpp"

#include "queue/header_value.hpp"

#include "async/exponential_backoff.hpp"
#include "async/run_blocking.hpp"
#include "log/logger.hpp"
#include "queue/consumer_metrics.hpp"
#include "queue/settle/jetstream_ack.hpp"
#include "queue/nats_error.hpp"
#include "queue/settle/settlement.hpp"

namespace archie::queue {
using async::exponential_backoff;
using async::run_blocking;
namespace asio = boost::asio;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

namespace {
// Bytes kept free for the dead-letter headers (codes, a reason capped at 1 KiB, sequence).
constexpr std::size_t dead_letter_header_room = 4096;
// How long one synchronous ack waits for the server's confirmation (nats.c's JetStream default).
constexpr milliseconds ack_confirmation_wait{5000};
}  // namespace

message_settler::message_settler(asio::any_io_executor io, asio::thread_pool& blocking, nats_connection& conn,
                                 const config::queue_config& cfg)
    : io_(io), blocking_(blocking), conn_(conn), cfg_(cfg) {}

void message_settler::give_back(queue_message& msg) {
  jetstream_ack::nak(conn_.raw(), msg.raw(), milliseconds(0));
  consumer_metrics::get().count_outcome("nak", "shutdown");
}

asio::awaitable<bool> message_settler::ack(queue_message& msg, bool confirm) {
  if (cfg_.ack_mode == config::ack_policy::async || !confirm)
    co_return jetstream_ack::ack(conn_.raw(), msg.raw()) == NATS_OK;
  // AckSync waits for the server's confirmation, so a lost ack cannot silently turn into a
  // duplicate copy. Retry a few times; if all fail, the message is redelivered after AckWait.
  // Keep trying for up to ack_wait: during a JetStream leader election every ack gets "no
  // responders" for several seconds, and giving up early turns each in-flight message into a
  // duplicate. In-progress before each retry keeps the server from redelivering meanwhile.
  auto give_up = steady_clock::now() + cfg_.consumer.ack_wait;
  config::backoff_config retry{milliseconds(50), 2.0, milliseconds(1000), 0.2};
  exponential_backoff backoff(io_, retry);
  if (!confirmations_) confirmations_ = std::make_shared<ack_confirmations>(io_, conn_.raw());
  for (;;) {
    natsStatus s = co_await confirmations_->ack(msg.raw(), ack_confirmation_wait);
    if (s == NATS_OK) co_return true;
    if (s == NATS_ILLEGAL_STATE || s == NATS_CONNECTION_CLOSED || steady_clock::now() >= give_up) {
      log::error("ack failed; the message will be redelivered after ack_wait",
                 {{"seq", msg.delivery().stream_sequence}, {"error", nats_error_text("ack", s)}});
      co_return false;
    }
    jetstream_ack::in_progress(conn_.raw(), msg.raw());
    co_await backoff.wait();
  }
}

asio::awaitable<bool> message_settler::dead_letter(queue_message& msg, const message_outcome& outcome) {
  auto publish_dead_letter = [&]() -> std::string {
    // The copy carries headers the original did not: a body near the server's max_payload
    // would no longer fit. Keep its head and say so, rather than never dead-lettering it.
    std::string_view body = msg.data();
    const std::int64_t max_payload = natsConnection_GetMaxPayload(conn_.raw());
    const std::size_t room = max_payload > static_cast<std::int64_t>(2 * dead_letter_header_room)
                                 ? static_cast<std::size_t>(max_payload) - dead_letter_header_room
                                 : body.size();
    bool truncated = body.size() > room;
    if (truncated) body = body.substr(0, room);
    natsMsg* dlq = nullptr;
    natsStatus s = natsMsg_Create(&dlq, cfg_.dead_letter_subject.c_str(), nullptr, body.data(),
                                  static_cast<int>(body.size()));
    if (s != NATS_OK) return nats_error_text("dead-letter message", s);
    if (truncated) {
      natsMsgHeader_Set(dlq, "Archie-Truncated", "true");
      natsMsgHeader_Set(dlq, "Archie-Original-Size", std::to_string(msg.data().size()).c_str());
    }
    // Codes, reasons and subjects carry keys and server texts: encoded (queue/header_value.hpp)
    // so that none can end its header line, and capped to stay within the room kept above.
    natsMsgHeader_Set(dlq, "Archie-Term-Code", encode_header_value(outcome.code, 128).c_str());
    natsMsgHeader_Set(dlq, "Archie-Term-Reason", encode_header_value(outcome.reason, 1024).c_str());
    natsMsgHeader_Set(dlq, "Archie-Stream", encode_header_value(cfg_.stream.name, 256).c_str());
    natsMsgHeader_Set(dlq, "Archie-Stream-Sequence", std::to_string(msg.delivery().stream_sequence).c_str());
    natsMsgHeader_Set(dlq, "Archie-Deliveries", std::to_string(msg.delivery().deliveries).c_str());
    natsMsgHeader_Set(dlq, "Archie-Original-Subject", encode_header_value(msg.subject(), 1024).c_str());
    jsErrCode jerr = static_cast<jsErrCode>(0);
    s = js_PublishMsg(nullptr, conn_.jetstream(), dlq, nullptr, &jerr);
    natsMsg_Destroy(dlq);
    return s == NATS_OK ? std::string() : nats_error_text("publish to " + cfg_.dead_letter_subject, s, jerr);
  };
  auto result = co_await run_blocking(blocking_, publish_dead_letter);
  if (!result.empty()) {
    log::error("dead-lettering failed; keeping the message (nak) instead of terminating it",
               {{"seq", msg.delivery().stream_sequence}, {"error", result}});
    co_return false;
  }
  consumer_metrics::get().count_outcome("dead_lettered", outcome.code);
  co_return true;
}

asio::awaitable<void> message_settler::settle(queue_message& msg, const message_outcome& decided) {
  const auto started = std::chrono::steady_clock::now();
  auto& metrics = consumer_metrics::get();
  auto dead_letter_step = dead_letter_result::not_needed;
  if (needs_dead_letter(decided, !cfg_.dead_letter_subject.empty())) {
    bool published = co_await dead_letter(msg, decided);
    dead_letter_step = published ? dead_letter_result::published : dead_letter_result::failed;
  }
  settlement decision = settle_after_dead_letter(decided, dead_letter_step, msg.delivery().deliveries);
  const message_outcome& outcome = decision.outcome;
  if (decision.dead_letter_abandoned) {
    log::error("dead-lettering failed repeatedly; terminating without a dead letter",
               {{"seq", msg.delivery().stream_sequence}, {"deliveries", msg.delivery().deliveries},
                {"code", outcome.code}, {"reason", outcome.reason}});
    metrics.count_outcome("dead_letter_abandoned", outcome.code);
  }
  natsStatus s = NATS_OK;
  switch (outcome.what) {
    case message_outcome::kind::ack:
      if (!co_await ack(msg, outcome.confirm)) {
        metrics.count_outcome("ack_failed", outcome.code);
        co_return;
      }
      break;
    case message_outcome::kind::nak: {
      auto delay = nak_delay(outcome, cfg_.nak_backoff, msg.delivery().deliveries, rng_);
      s = jetstream_ack::nak(conn_.raw(), msg.raw(), delay);
      log::debug("nak", {{"seq", msg.delivery().stream_sequence},
                         {"deliveries", msg.delivery().deliveries},
                         {"delay_ms", static_cast<std::int64_t>(delay.count())},
                         {"code", outcome.code}});
      break;
    }
    case message_outcome::kind::term:
      s = jetstream_ack::term(conn_.raw(), msg.raw());
      break;
  }
  if (s != NATS_OK)
    log::warn("acknowledgement not sent; the message will be redelivered after ack_wait",
              {{"seq", msg.delivery().stream_sequence}, {"outcome", to_string(outcome.what)},
               {"error", nats_error_text("settle", s)}});
  metrics.count_outcome(to_string(outcome.what), outcome.code);
  metrics.settle_duration.Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
}

}  // namespace archie::queue
