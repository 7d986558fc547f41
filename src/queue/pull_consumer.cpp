#include "queue/pull_consumer.hpp"

#include "log/logger.hpp"
#include "metrics/registry.hpp"
#include "async/exponential_backoff.hpp"
#include "async/run_blocking.hpp"
#include "queue/nats_error.hpp"
#include "queue/settlement.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>

#include <condition_variable>
#include <mutex>
#include <random>
#include <thread>

namespace archie::queue {
using async::exponential_backoff;
using async::run_blocking;
namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

namespace {

struct queue_metrics {
  prometheus::Family<prometheus::Counter>& outcomes = prometheus::BuildCounter()
      .Name("archie_queue_outcomes_total")
      .Help("Messages settled, by outcome (ack, nak, term, dead_lettered, ack_failed) and cause code")
      .Register(metrics::registry());
  prometheus::Counter& fetched = prometheus::BuildCounter()
      .Name("archie_queue_fetched_messages_total")
      .Help("Messages pulled from the JetStream consumer")
      .Register(metrics::registry()).Add({});
  prometheus::Family<prometheus::Counter>& fetches = prometheus::BuildCounter()
      .Name("archie_queue_fetch_requests_total")
      .Help("Pull requests sent, by result (messages, empty, error)")
      .Register(metrics::registry());
  prometheus::Gauge& in_flight = prometheus::BuildGauge()
      .Name("archie_queue_in_flight_messages")
      .Help("Messages fetched and not yet settled")
      .Register(metrics::registry()).Add({});
  prometheus::Histogram& latency = prometheus::BuildHistogram()
      .Name("archie_queue_latency_seconds")
      .Help("Time from the stream storing a message to this worker receiving it")
      .Register(metrics::registry())
      .Add({}, prometheus::Histogram::BucketBoundaries{0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60, 300, 1800, 3600});
  prometheus::Counter& heartbeats = prometheus::BuildCounter()
      .Name("archie_queue_in_progress_heartbeats_total")
      .Help("In-progress acknowledgements sent for long-running messages")
      .Register(metrics::registry()).Add({});

  static queue_metrics& get() {
    static queue_metrics m;
    return m;
  }
};

// Bytes kept free for the dead-letter headers (codes, a reason capped at 1 KiB, sequence).
constexpr std::size_t dead_letter_header_room = 4096;

}  // namespace

struct pull_consumer::impl : std::enable_shared_from_this<impl> {
  using channel_t = asio::experimental::concurrent_channel<void(boost::system::error_code, std::shared_ptr<queue_message>)>;

  asio::any_io_executor io;
  asio::thread_pool& blocking;
  nats_connection& conn;
  const config::queue_config& cfg;
  consumer_options opts;
  message_handler handler;
  channel_t channel;
  asio::steady_timer hard_stop;
  natsSubscription* sub = nullptr;
  std::thread fetcher;
  std::mt19937_64 rng{std::random_device{}()};

  std::mutex slots_mutex;
  std::condition_variable slots_cv;
  std::size_t free_slots;
  std::size_t refill_at;  ///< free slots that make a pull worth its round trip
  std::atomic<bool> stopping{false};
  std::atomic<bool> paused{false};
  std::atomic<std::size_t> in_flight{0};
  std::atomic<std::size_t> workers_running{0};

  impl(asio::any_io_executor ex, asio::thread_pool& pool, nats_connection& c, const config::queue_config& q,
       consumer_options o, message_handler h)
      : io(ex), blocking(pool), conn(c), cfg(q), opts(o), handler(std::move(h)),
        channel(ex, o.concurrency), hard_stop(ex, steady_clock::time_point::max()), free_slots(o.concurrency),
        refill_at(std::max<std::size_t>(1, std::min<std::size_t>(o.concurrency,
                                                                 static_cast<std::size_t>(q.max_fetch_batch)) / 4)) {}

  ~impl() {
    if (sub) natsSubscription_Destroy(sub);
  }

  void bind_subscription() {
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = cfg.stream.name.c_str();
    so.Consumer = cfg.consumer.durable.c_str();
    const std::string& subject = !cfg.consumer.filter_subject.empty() ? cfg.consumer.filter_subject
                                 : !cfg.stream.subjects.empty()       ? cfg.stream.subjects.front()
                                                                      : cfg.consumer.durable;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    natsStatus s = js_PullSubscribe(&sub, conn.jetstream(), subject.c_str(), cfg.consumer.durable.c_str(), nullptr,
                                    &so, &jerr);
    if (s != NATS_OK)
      throw nats_error("bind to consumer " + cfg.consumer.durable + " on stream " + cfg.stream.name, s, jerr);
  }

  // Runs on its own thread: nats.c 3.4's fetch is blocking and not re-entrant.
  void fetch_loop() {
    auto& m = queue_metrics::get();

    milliseconds error_backoff{100};
    while (!stopping) {
      std::size_t batch;
      {
        std::unique_lock lock(slots_mutex);
        // Refill in batches: waking for every single freed slot would send one pull request
        // (a server round trip) per message and defeat batching under load.
        slots_cv.wait(lock, [&] {
          return stopping || (!paused && (free_slots >= refill_at || (free_slots > 0 && in_flight == 0)));
        });
        if (stopping) break;
        batch = std::min<std::size_t>(free_slots, static_cast<std::size_t>(cfg.max_fetch_batch));
      }
      if (!conn.connected()) {
        std::this_thread::sleep_for(milliseconds(100));
        continue;
      }
      // A pull completes only when its batch is full or it expires. An idle worker asks for
      // one message with the long expiry, so a lone event is handled the moment it arrives; a
      // busy worker asks for all its free slots but lets the pull expire quickly, so a
      // partial batch is not held back. (No NoWait pulls: nats.c 3.4 can hand a NoWait's late
      // "404 No Messages" to the next pull, which then returns while the server still holds
      // it open and later delivers into a request nobody waits for.)
      bool idle = in_flight == 0;
      jsFetchRequest req;
      jsFetchRequest_Init(&req);
      req.Batch = idle ? 1 : static_cast<int>(batch);
      auto expires = idle ? cfg.fetch_expires : std::min(cfg.fetch_expires, milliseconds(100));
      req.Expires = static_cast<int64_t>(expires.count()) * 1'000'000;  // nanoseconds
      natsMsgList list{nullptr, 0};
      natsStatus s = natsSubscription_FetchRequest(&list, sub, &req);
      // Messages that arrived before an expiry or error are ours: never drop them.
      if (list.Count > 0) s = NATS_OK;
      // TIMEOUT / NOT_FOUND: the pull expired empty. Nothing to do yet.
      if (s == NATS_TIMEOUT || s == NATS_NOT_FOUND || (s == NATS_OK && list.Count == 0)) {
        m.fetches.Add({{"result", "empty"}}).Increment();
        natsMsgList_Destroy(&list);
        continue;
      }
      if (s != NATS_OK) {
        m.fetches.Add({{"result", "error"}}).Increment();
        if (!stopping) log::warn("fetch failed; retrying", {{"error", nats_error_text("fetch", s)},
                                                             {"retry_in_ms", static_cast<std::int64_t>(error_backoff.count())}});
        natsMsgList_Destroy(&list);
        std::this_thread::sleep_for(error_backoff);
        error_backoff = std::min(error_backoff * 2, milliseconds(5000));
        continue;
      }
      error_backoff = milliseconds(100);
      m.fetches.Add({{"result", "messages"}}).Increment();
      m.fetched.Increment(list.Count);
      {
        std::lock_guard lock(slots_mutex);
        free_slots -= static_cast<std::size_t>(list.Count);
      }
      auto now = std::chrono::system_clock::now();
      for (int i = 0; i < list.Count; ++i) {
        auto msg = std::make_shared<queue_message>(list.Msgs[i]);
        list.Msgs[i] = nullptr;  // the queue_message owns it now
        m.latency.Observe(std::chrono::duration<double>(now - msg->delivery().published).count());
        in_flight++;
        m.in_flight.Increment();
        if (stopping || !channel.try_send(boost::system::error_code{}, msg)) {
          // Shutting down (or, impossibly, no room): hand it straight back for redelivery.
          natsMsg_Nak(msg->raw(), nullptr);
          count_outcome("nak", "shutdown");
          release_slot();
        }
      }
      natsMsgList_Destroy(&list);
    }
  }

  void count_outcome(const char* outcome, const std::string& code) {
    queue_metrics::get().outcomes.Add({{"outcome", outcome}, {"code", code}}).Increment();
  }

  void release_slot() {
    std::size_t still_in_flight = --in_flight;
    queue_metrics::get().in_flight.Decrement();
    bool wake;
    {
      std::lock_guard lock(slots_mutex);
      ++free_slots;
      // Wake the fetcher only when it has something to do: a thread wake-up per message
      // costs more than the message itself at high rates.
      wake = free_slots == refill_at || still_in_flight == 0;
    }
    if (wake) slots_cv.notify_one();
  }

  asio::awaitable<void> worker_loop() {
    auto self = shared_from_this();
    for (;;) {
      auto [ec, msg] = co_await channel.async_receive(asio::as_tuple(asio::use_awaitable));
      if (ec) break;
      co_await process(*msg);
      release_slot();
    }
    workers_running--;
  }

  asio::awaitable<void> heartbeat(queue_message& msg) {
    // A third of AckWait leaves two chances for a heartbeat to arrive before redelivery.
    asio::steady_timer timer(io);
    for (;;) {
      timer.expires_after(std::max(cfg.consumer.ack_wait / 3, milliseconds(100)));
      co_await timer.async_wait(asio::use_awaitable);
      natsMsg_InProgress(msg.raw(), nullptr);
      queue_metrics::get().heartbeats.Increment();
    }
  }

  asio::awaitable<void> sleep_for(milliseconds d) {
    asio::steady_timer timer(io, d);
    co_await timer.async_wait(asio::use_awaitable);
  }

  asio::awaitable<void> wait_hard_stop() {
    co_await hard_stop.async_wait(asio::as_tuple(asio::use_awaitable));
  }

  asio::awaitable<message_outcome> guarded_handler(queue_message& msg) {
    try {
      co_return co_await handler(msg);
    } catch (const std::exception& e) {
      co_return message_outcome::nak("internal_error", std::string("handler failed: ") + e.what());
    }
  }

  asio::awaitable<void> process(queue_message& msg) {
    message_outcome outcome;
    auto result = co_await (guarded_handler(msg) || heartbeat(msg) || sleep_for(opts.message_timeout) || wait_hard_stop());
    switch (result.index()) {
      case 0: outcome = std::get<0>(std::move(result)); break;
      case 2:
        outcome = message_outcome::nak("timeout", "message not finished within worker.message_timeout");
        break;
      default:
        // Shutdown deadline: give it back with no delay so another worker starts at once.
        outcome = message_outcome::nak("shutdown", "worker shutting down", milliseconds(0));
        break;
    }
    // The handler has returned by now (its copies aborted); say why its work did not count.
    if (result.index() != 0)
      log::warn("message not finished", {{"seq", msg.delivery().stream_sequence},
                                         {"deliveries", msg.delivery().deliveries},
                                         {"code", outcome.code}});
    co_await settle(msg, outcome);
  }

  asio::awaitable<bool> ack(queue_message& msg) {
    if (cfg.ack_mode == config::ack_policy::async) co_return natsMsg_Ack(msg.raw(), nullptr) == NATS_OK;
    // AckSync waits for the server's confirmation, so a lost ack cannot silently turn into a
    // duplicate copy. Retry a few times; if all fail, the message is redelivered after AckWait.
    // Keep trying for up to ack_wait: during a JetStream leader election every ack gets "no
    // responders" for several seconds, and giving up early turns each in-flight message into a
    // duplicate. In-progress before each retry keeps the server from redelivering meanwhile.
    auto give_up = steady_clock::now() + cfg.consumer.ack_wait;
    config::backoff_config retry{milliseconds(50), 2.0, milliseconds(1000), 0.2};
    exponential_backoff backoff(io, retry);
    for (;;) {
      auto ack_sync = [raw = msg.raw()] {
        jsErrCode jerr = static_cast<jsErrCode>(0);
        natsStatus st = natsMsg_AckSync(raw, nullptr, &jerr);
        return std::pair{st, st == NATS_OK ? std::string() : nats_error_text("ack", st, jerr)};
      };
      auto [s, text] = co_await run_blocking(blocking, ack_sync);
      if (s == NATS_OK) co_return true;
      if (s == NATS_ILLEGAL_STATE || s == NATS_CONNECTION_CLOSED || steady_clock::now() >= give_up) {
        log::error("ack failed; the message will be redelivered after ack_wait",
                   {{"seq", msg.delivery().stream_sequence}, {"error", text}});
        co_return false;
      }
      natsMsg_InProgress(msg.raw(), nullptr);
      co_await backoff.wait();
    }
  }

  asio::awaitable<bool> dead_letter(queue_message& msg, const message_outcome& outcome) {
    auto publish_dead_letter = [&]() -> std::string {
      // The copy carries headers the original did not: a body near the server's max_payload
      // would no longer fit. Keep its head and say so, rather than never dead-lettering it.
      std::string_view body = msg.data();
      const std::int64_t max_payload = natsConnection_GetMaxPayload(conn.raw());
      const std::size_t room = max_payload > static_cast<std::int64_t>(2 * dead_letter_header_room)
                                   ? static_cast<std::size_t>(max_payload) - dead_letter_header_room
                                   : body.size();
      bool truncated = body.size() > room;
      if (truncated) body = body.substr(0, room);
      natsMsg* dlq = nullptr;
      natsStatus s = natsMsg_Create(&dlq, cfg.dead_letter_subject.c_str(), nullptr, body.data(),
                                    static_cast<int>(body.size()));
      if (s != NATS_OK) return nats_error_text("dead-letter message", s);
      if (truncated) {
        natsMsgHeader_Set(dlq, "Archie-Truncated", "true");
        natsMsgHeader_Set(dlq, "Archie-Original-Size", std::to_string(msg.data().size()).c_str());
      }
      natsMsgHeader_Set(dlq, "Archie-Term-Code", outcome.code.c_str());
      // Reasons are single-line already; cap them so headers stay within the room kept above.
      natsMsgHeader_Set(dlq, "Archie-Term-Reason", outcome.reason.substr(0, 1024).c_str());
      natsMsgHeader_Set(dlq, "Archie-Stream", cfg.stream.name.c_str());
      natsMsgHeader_Set(dlq, "Archie-Stream-Sequence", std::to_string(msg.delivery().stream_sequence).c_str());
      natsMsgHeader_Set(dlq, "Archie-Deliveries", std::to_string(msg.delivery().deliveries).c_str());
      natsMsgHeader_Set(dlq, "Archie-Original-Subject", std::string(msg.subject()).c_str());
      jsErrCode jerr = static_cast<jsErrCode>(0);
      s = js_PublishMsg(nullptr, conn.jetstream(), dlq, nullptr, &jerr);
      natsMsg_Destroy(dlq);
      return s == NATS_OK ? std::string() : nats_error_text("publish to " + cfg.dead_letter_subject, s, jerr);
    };
    auto result = co_await run_blocking(blocking, publish_dead_letter);
    if (!result.empty()) {
      log::error("dead-lettering failed; keeping the message (nak) instead of terminating it",
                 {{"seq", msg.delivery().stream_sequence}, {"error", result}});
      co_return false;
    }
    count_outcome("dead_lettered", outcome.code);
    co_return true;
  }

  asio::awaitable<void> settle(queue_message& msg, const message_outcome& decided) {
    auto dead_letter_step = dead_letter_result::not_needed;
    if (needs_dead_letter(decided, !cfg.dead_letter_subject.empty())) {
      bool published = co_await dead_letter(msg, decided);
      dead_letter_step = published ? dead_letter_result::published : dead_letter_result::failed;
    }
    settlement decision = settle_after_dead_letter(decided, dead_letter_step, msg.delivery().deliveries);
    const message_outcome& outcome = decision.outcome;
    if (decision.dead_letter_abandoned) {
      log::error("dead-lettering failed repeatedly; terminating without a dead letter",
                 {{"seq", msg.delivery().stream_sequence}, {"deliveries", msg.delivery().deliveries},
                  {"code", outcome.code}, {"reason", outcome.reason}});
      count_outcome("dead_letter_abandoned", outcome.code);
    }
    natsStatus s = NATS_OK;
    switch (outcome.what) {
      case message_outcome::kind::ack:
        if (!co_await ack(msg)) {
          count_outcome("ack_failed", outcome.code);
          co_return;
        }
        break;
      case message_outcome::kind::nak: {
        auto delay = nak_delay(outcome, cfg.nak_backoff, msg.delivery().deliveries, rng);
        s = natsMsg_NakWithDelay(msg.raw(), delay.count(), nullptr);  // milliseconds in nats.c 3.4
        log::debug("nak", {{"seq", msg.delivery().stream_sequence},
                           {"deliveries", msg.delivery().deliveries},
                           {"delay_ms", static_cast<std::int64_t>(delay.count())},
                           {"code", outcome.code}});
        break;
      }
      case message_outcome::kind::term:
        s = natsMsg_Term(msg.raw(), nullptr);
        break;
    }
    if (s != NATS_OK)
      log::warn("acknowledgement not sent; the message will be redelivered after ack_wait",
                {{"seq", msg.delivery().stream_sequence}, {"outcome", to_string(outcome.what)},
                 {"error", nats_error_text("settle", s)}});
    count_outcome(to_string(outcome.what), outcome.code);
  }
};

pull_consumer::pull_consumer(asio::any_io_executor io, asio::thread_pool& blocking, nats_connection& conn,
                             const config::queue_config& cfg, consumer_options opts, message_handler handler)
    : impl_(std::make_shared<impl>(io, blocking, conn, cfg, opts, std::move(handler))) {}

pull_consumer::~pull_consumer() {
  impl_->stopping = true;
  impl_->slots_cv.notify_all();
  if (impl_->fetcher.joinable()) impl_->fetcher.join();
}

asio::awaitable<void> pull_consumer::start() {
  auto self = impl_;
  auto bind = [p = self.get()] { p->bind_subscription(); };
  co_await run_blocking(self->blocking, bind);
  for (std::size_t i = 0; i < self->opts.concurrency; ++i) {
    self->workers_running++;
    asio::co_spawn(self->io, self->worker_loop(), asio::detached);
  }
  self->fetcher = std::thread([self] { self->fetch_loop(); });
  log::info("consuming", {{"stream", self->cfg.stream.name},
                          {"consumer", self->cfg.consumer.durable},
                          {"concurrency", static_cast<std::int64_t>(self->opts.concurrency)}});
}

asio::awaitable<void> pull_consumer::drain(steady_clock::time_point deadline) {
  auto self = impl_;
  self->stopping = true;
  self->slots_cv.notify_all();
  log::info("draining: fetching stopped", {{"in_flight", static_cast<std::int64_t>(self->in_flight.load())}});
  asio::steady_timer poll(self->io);
  while (self->in_flight > 0 && steady_clock::now() < deadline) {
    poll.expires_after(milliseconds(20));
    co_await poll.async_wait(asio::use_awaitable);
  }
  if (self->in_flight > 0) {
    log::warn("shutdown wait exceeded; returning unfinished messages to the queue",
              {{"in_flight", static_cast<std::int64_t>(self->in_flight.load())}});
    // expires_at(min) rather than cancel(): a message that starts after this point must not
    // wait for a cancellation that has already happened.
    self->hard_stop.expires_at(steady_clock::time_point::min());
    while (self->in_flight > 0) {
      poll.expires_after(milliseconds(20));
      co_await poll.async_wait(asio::use_awaitable);
    }
  }
  self->channel.close();
  // The fetcher may sit in a pull request for up to fetch_expires; wait for it off-loop.
  auto join_fetcher = [p = self.get()] {
    if (p->fetcher.joinable()) p->fetcher.join();
  };
  co_await run_blocking(self->blocking, join_fetcher);
  log::info("drained");
}

void pull_consumer::set_paused(bool paused) {
  impl_->paused = paused;
  impl_->slots_cv.notify_all();
}

std::size_t pull_consumer::in_flight() const { return impl_->in_flight; }

}  // namespace archie::queue
