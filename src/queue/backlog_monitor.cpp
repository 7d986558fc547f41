#include "queue/backlog_monitor.hpp"

#include "log/logger.hpp"
#include "metrics/registry.hpp"
#include "async/run_blocking.hpp"
#include "queue/nats_error.hpp"

#include <boost/asio/use_awaitable.hpp>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>

#include <algorithm>
#include <memory>

namespace archie::queue {
using async::run_blocking;
namespace asio = boost::asio;

namespace {

struct backlog_gauges {
  prometheus::Gauge& pending;
  prometheus::Gauge& ack_pending;
  prometheus::Gauge& redelivered;
  prometheus::Gauge& delivered_stream_seq;
  prometheus::Gauge& stream_last_seq;
  prometheus::Gauge& oldest_age;
  prometheus::Counter& errors;
};

prometheus::Gauge& gauge(const char* name, const char* help, const prometheus::Labels& labels) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(metrics::registry()).Add(labels);
}

backlog_gauges make_gauges(const std::string& stream, const std::string& durable) {
  const prometheus::Labels consumer{{"stream", stream}, {"consumer", durable}};
  return backlog_gauges{
      gauge("archie_consumer_pending_messages", "Messages stored for the consumer and not yet delivered (num_pending)",
            consumer),
      gauge("archie_consumer_ack_pending_messages",
            "Messages delivered and not yet acked, in flight or in nak backoff (num_ack_pending)", consumer),
      gauge("archie_consumer_redelivered_messages", "Unacked messages delivered more than once (num_redelivered)",
            consumer),
      gauge("archie_consumer_delivered_stream_sequence", "Last stream sequence delivered to the consumer", consumer),
      gauge("archie_stream_last_sequence", "Last sequence stored in the stream", {{"stream", stream}}),
      gauge("archie_consumer_oldest_unacked_age_seconds",
            "Age of the oldest message the consumer has not acked, 0 when none is outstanding", consumer),
      prometheus::BuildCounter()
          .Name("archie_consumer_info_errors_total")
          .Help("Failed polls of the consumer's state from JetStream")
          .Register(metrics::registry())
          .Add(consumer),
  };
}

using consumer_info_ptr = std::unique_ptr<jsConsumerInfo, decltype(&jsConsumerInfo_Destroy)>;
using stream_info_ptr = std::unique_ptr<jsStreamInfo, decltype(&jsStreamInfo_Destroy)>;
using msg_ptr = std::unique_ptr<natsMsg, decltype(&natsMsg_Destroy)>;

double seconds_since(std::int64_t unix_ns, std::chrono::system_clock::time_point now) {
  auto now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
  return std::max<double>(0.0, static_cast<double>(now_ns - unix_ns) / 1e9);
}

}  // namespace

backlog_snapshot read_backlog(jsCtx* js, const std::string& stream, const std::string& durable,
                              std::chrono::system_clock::time_point now) {
  jsErrCode code = static_cast<jsErrCode>(0);
  jsConsumerInfo* raw_ci = nullptr;
  natsStatus s = js_GetConsumerInfo(&raw_ci, js, stream.c_str(), durable.c_str(), nullptr, &code);
  if (s != NATS_OK) throw nats_error("consumer info " + stream + "/" + durable, s, code);
  consumer_info_ptr ci(raw_ci, &jsConsumerInfo_Destroy);
  jsStreamInfo* raw_si = nullptr;
  s = js_GetStreamInfo(&raw_si, js, stream.c_str(), nullptr, &code);
  if (s != NATS_OK) throw nats_error("stream info " + stream, s, code);
  stream_info_ptr si(raw_si, &jsStreamInfo_Destroy);

  backlog_snapshot snap;
  snap.pending = ci->NumPending;
  snap.ack_pending = ci->NumAckPending;
  snap.redelivered = ci->NumRedelivered;
  snap.delivered_stream_seq = ci->Delivered.Stream;
  snap.stream_last_seq = si->State.LastSeq;
  if (snap.pending == 0 && snap.ack_pending == 0) return snap;

  // Everything at or below the ack floor is acked; the oldest outstanding message is the
  // next one still stored. In a workqueue stream (archie's default) acked messages are
  // removed, so that is the stream's first message and its time comes with the stream info.
  std::uint64_t oldest = std::max<std::uint64_t>(ci->AckFloor.Stream + 1, si->State.FirstSeq);
  if (oldest == si->State.FirstSeq && si->State.FirstTime > 0) {
    snap.oldest_unacked_age_seconds = seconds_since(si->State.FirstTime, now);
  } else if (oldest <= si->State.LastSeq) {
    natsMsg* raw_msg = nullptr;
    // A gap (deleted or filtered-out sequence) is possible; then the age is left at 0
    // until the next poll finds a stored message.
    if (js_GetMsg(&raw_msg, js, stream.c_str(), oldest, nullptr, &code) == NATS_OK) {
      msg_ptr msg(raw_msg, &natsMsg_Destroy);
      snap.oldest_unacked_age_seconds = seconds_since(natsMsg_GetTime(msg.get()), now);
    }
  }
  return snap;
}

backlog_monitor::backlog_monitor(asio::any_io_executor io, asio::thread_pool& blocking, jsCtx* js, std::string stream,
                                 std::string durable, std::chrono::milliseconds interval)
    : blocking_(blocking),
      js_(js),
      stream_(std::move(stream)),
      durable_(std::move(durable)),
      loop_(io, interval) {}

asio::awaitable<void> backlog_monitor::run() {
  backlog_gauges g = make_gauges(stream_, durable_);
  bool failing = false;
  auto poll_once = [&]() -> asio::awaitable<void> {
    try {
      auto poll = [this] { return read_backlog(js_, stream_, durable_, std::chrono::system_clock::now()); };
      backlog_snapshot snap = co_await run_blocking(blocking_, poll);
      g.pending.Set(static_cast<double>(snap.pending));
      g.ack_pending.Set(static_cast<double>(snap.ack_pending));
      g.redelivered.Set(static_cast<double>(snap.redelivered));
      g.delivered_stream_seq.Set(static_cast<double>(snap.delivered_stream_seq));
      g.stream_last_seq.Set(static_cast<double>(snap.stream_last_seq));
      g.oldest_age.Set(snap.oldest_unacked_age_seconds);
      if (failing) log::info("consumer backlog readable again", {{"stream", stream_}, {"consumer", durable_}});
      failing = false;
    } catch (const std::exception& e) {
      g.errors.Increment();
      // Once per outage: a lost NATS connection is already reported by the connection itself.
      if (!failing) log::warn("cannot read the consumer backlog", {{"error", e.what()}});
      failing = true;
    }
  };
  co_await loop_.run(poll_once);
}

asio::awaitable<void> backlog_monitor::stop() { co_await loop_.stop(); }

}  // namespace archie::queue
