#include "queue/pull_consumer.hpp"

#include "async/run_blocking.hpp"
#include "async/task_group.hpp"
#include "log/logger.hpp"
#include "queue/consumer_metrics.hpp"
#include "queue/settle/message_reaper.hpp"
#include "queue/settle/message_settler.hpp"
#include "queue/settle/jetstream_ack.hpp"
#include "queue/nats_error.hpp"
#include "queue/pull_window.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <boost/asio/post.hpp>

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <string_view>

namespace archie::queue {
using async::run_blocking;
namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

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
  asio::steady_timer requests_over;  ///< drain: cancelled once no pull request is open
  asio::steady_timer tick;           ///< keep_requests_open's clock
  message_settler settler;
  async::task_group workers;
  async::task_group background;
  std::string next_subject;  ///< $JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>
  std::string inbox;         ///< where our pull requests are answered
  natsSubscription* sub = nullptr;
  std::shared_ptr<message_reaper> reaper;

  std::mutex window_mutex;
  pull_window window;
  steady_clock::time_point last_request_sent{};
  std::atomic<bool> stopping{false};
  std::atomic<bool> paused{false};
  std::atomic<std::size_t> in_flight{0};
  std::size_t stepped_aside = 0;  ///< messages no longer counted against concurrency (io thread)

  impl(asio::any_io_executor ex, asio::thread_pool& pool, nats_connection& c, const config::queue_config& q,
       consumer_options o, message_handler h)
      : io(ex), blocking(pool), conn(c), cfg(q), opts(o), handler(std::move(h)),
        channel(ex, 3 * o.concurrency), hard_stop(ex, steady_clock::time_point::max()),
        requests_over(ex, steady_clock::time_point::max()), tick(ex), settler(ex, pool, c, q),
        workers(ex, "queue workers"), background(ex, "queue requests"),
        next_subject("$JS.API.CONSUMER.MSG.NEXT." + q.stream.name + "." + q.consumer.durable),
        reaper(std::make_shared<message_reaper>(ex)),
        window(window_limits(o, q)) {}

  ~impl() { close_subscription(); }

  static pull_window::limits window_limits(const consumer_options& o, const config::queue_config& q) {
    pull_window::limits l;
    l.slots = o.concurrency;
    l.max_batch = static_cast<std::size_t>(std::max<std::int64_t>(1, q.max_fetch_batch));
    // Top up in quarters: a request per freed slot would cost a round trip per message.
    l.refill_at = std::max<std::size_t>(1, std::min(l.slots, l.max_batch) / 4);
    l.heartbeat = idle_heartbeat(q);
    return l;
  }

  // The server's heartbeat on an open request; it must be shorter than the request's expiry.
  static milliseconds idle_heartbeat(const config::queue_config& q) {
    return std::clamp(q.fetch_expires / 4, milliseconds(50), milliseconds(1000));
  }

  // Blocking (called on the pool). Checks that the durable pull consumer exists, then listens
  // on a private inbox for the answers to our pull requests.
  void subscribe() {
    jsConsumerInfo* info = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    natsStatus s = js_GetConsumerInfo(&info, conn.jetstream(), cfg.stream.name.c_str(), cfg.consumer.durable.c_str(),
                                      nullptr, &jerr);
    if (s != NATS_OK)
      throw nats_error("bind to consumer " + cfg.consumer.durable + " on stream " + cfg.stream.name, s, jerr);
    bool push = info->Config && info->Config->DeliverSubject && *info->Config->DeliverSubject;
    jsConsumerInfo_Destroy(info);
    if (push)
      throw nats_error("bind to consumer " + cfg.consumer.durable + " on stream " + cfg.stream.name +
                           ": it is a push consumer; archie needs a pull consumer",
                       NATS_INVALID_SUBSCRIPTION);
    natsInbox* box = nullptr;
    s = natsInbox_Create(&box);
    if (s != NATS_OK) throw nats_error("create an inbox", s);
    inbox = box;
    natsInbox_Destroy(box);
    s = natsConnection_Subscribe(&sub, conn.raw(), inbox.c_str(), &impl::on_message, this);
    if (s != NATS_OK) throw nats_error("subscribe to the pull inbox", s);
    // The window bounds what we ask for; the client-side limit must never drop an answer.
    natsSubscription_SetPendingLimits(sub, -1, -1);
  }

  void close_subscription() {
    if (!sub) return;
    // Drain: messages already received still reach on_message (which hands them back), then
    // nats.c stops calling it; only then may this object go.
    if (natsSubscription_Drain(sub) == NATS_OK) natsSubscription_WaitForDrainCompletion(sub, 5000);
    natsSubscription_Destroy(sub);
    sub = nullptr;
  }

  // nats.c's delivery thread: one answer to our pull requests.
  static void on_message(natsConnection*, natsSubscription*, natsMsg* raw, void* closure) {
    static_cast<impl*>(closure)->receive(raw);
  }

  void receive(natsMsg* raw) {
    auto now = steady_clock::now();
    const char* status = nullptr;
    const char* reply = natsMsg_GetReply(raw);
    if ((!reply || !*reply) && natsMsgHeader_Get(raw, "Status", &status) == NATS_OK && status) {
      on_status(raw, status, now);
      natsMsg_Destroy(raw);
      send_pull_requests();
      return;
    }
    auto& m = consumer_metrics::get();
    bool fits;
    bool requests_done;
    {
      std::lock_guard lock(window_mutex);
      fits = window.message_arrived(now);
      requests_done = window.outstanding() == 0;
    }
    if (stopping && requests_done) end_request_wait();
    auto msg = std::make_shared<queue_message>(raw, reaper);  // owns raw from here
    m.fetched.Increment();
    m.latency.Observe(std::chrono::duration<double>(std::chrono::system_clock::now() - msg->delivery().published).count());
    in_flight++;
    m.in_flight.Increment();
    if (!fits || stopping || !channel.try_send(boost::system::error_code{}, msg)) {
      // Shutting down, or more than the free slots (a request we had given up on answered
      // after all): straight back to the queue for another worker.
      settler.give_back(*msg);
      if (fits) release_slot();
      else finish_message();
      return;
    }
    send_pull_requests();
  }

  void on_status(natsMsg* raw, std::string_view status, steady_clock::time_point now) {
    auto& m = consumer_metrics::get();
    std::lock_guard lock(window_mutex);
    if (status == "100") {  // idle heartbeat: our requests are alive
      window.heartbeat(now);
      return;
    }
    // 408 Request Timeout (expired), 409 (too many requests, leader change, consumer deleted):
    // the request is over; the server says how much of it went unanswered.
    const char* pending = nullptr;
    std::optional<std::size_t> undelivered;
    if (natsMsgHeader_Get(raw, "Nats-Pending-Messages", &pending) == NATS_OK && pending)
      undelivered = static_cast<std::size_t>(std::strtoull(pending, nullptr, 10));
    window.request_ended(now, undelivered);
    if (status == "408") {
      m.fetches.Add({{"result", "expired"}}).Increment();
    } else {
      const char* description = nullptr;
      natsMsgHeader_Get(raw, "Description", &description);
      m.fetches.Add({{"result", "error"}}).Increment();
      log::warn("pull request ended by the server",
                {{"status", std::string(status)}, {"description", description ? description : ""}});
    }
    if (stopping && window.outstanding() == 0) end_request_wait();
  }

  // Drain waits for the last open request to end; any thread may say it has.
  void end_request_wait() {
    asio::post(io, [weak = weak_from_this()] {
      if (auto self = weak.lock()) self->requests_over.cancel();
    });
  }

  // Opens requests for the free slots nobody has asked for yet. Any thread; never blocks.
  void send_pull_requests() {
    if (stopping) return;
    std::size_t batch;
    {
      std::lock_guard lock(window_mutex);
      batch = window.take_request(steady_clock::now(), !paused && conn.connected());
      if (batch) last_request_sent = steady_clock::now();
    }
    if (!batch) return;
    auto expires_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(cfg.fetch_expires).count();
    auto heartbeat_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(idle_heartbeat(cfg)).count();
    std::string body = "{\"batch\":" + std::to_string(batch) + ",\"expires\":" + std::to_string(expires_ns) +
                       ",\"idle_heartbeat\":" + std::to_string(heartbeat_ns) + "}";
    natsStatus s = natsConnection_PublishRequest(conn.raw(), next_subject.c_str(), inbox.c_str(), body.data(),
                                                 static_cast<int>(body.size()));
    auto& m = consumer_metrics::get();
    if (s == NATS_OK) {
      m.fetches.Add({{"result", "sent"}}).Increment();
      return;
    }
    m.fetches.Add({{"result", "error"}}).Increment();
    std::lock_guard lock(window_mutex);
    window.request_not_sent(batch);
  }

  // Requests the server stopped answering (reconnect, leader change) are forgotten and asked
  // again; a pause ending or the connection coming back also lands here.
  asio::awaitable<void> keep_requests_open() {
    while (!stopping) {
      tick.expires_after(idle_heartbeat(cfg));
      co_await tick.async_wait(asio::as_tuple(asio::use_awaitable));
      bool forgot;
      {
        std::lock_guard lock(window_mutex);
        forgot = window.forget_if_silent(steady_clock::now());
      }
      if (forgot) log::info("pull requests went unanswered; asking again");
      send_pull_requests();
    }
  }

  void finish_message() {
    --in_flight;
    consumer_metrics::get().in_flight.Decrement();
  }

  std::size_t worker_count() const { return 2 * opts.concurrency; }

  void free_window_slot() {
    {
      std::lock_guard lock(window_mutex);
      window.slot_freed();
    }
    send_pull_requests();
  }

  void release_slot() {
    finish_message();
    free_window_slot();
  }

  // Until it receives the stop sentinel (a null message) queued behind the real ones.
  asio::awaitable<void> worker_loop() {
    for (;;) {
      auto [ec, msg] = co_await channel.async_receive(asio::as_tuple(asio::use_awaitable));
      if (ec || !msg) break;
      if (co_await process(*msg)) {
        --stepped_aside;
        finish_message();  // its window slot went when it stepped aside
      } else {
        release_slot();
      }
    }
  }

  // Messages left in the channel once every worker has gone: back to the queue at once.
  void give_back_leftovers() {
    while (channel.try_receive([this](boost::system::error_code, std::shared_ptr<queue_message> msg) {
      if (!msg) return;
      settler.give_back(*msg);
      release_slot();
    })) {
    }
  }

  // Stops counting the message against `concurrency` (its window slot goes to the next
  // message), while fewer than `concurrency` messages have.
  void step_aside(bool& aside) {
    if (aside || stepped_aside >= opts.concurrency) return;
    aside = true;
    ++stepped_aside;
    consumer_metrics::get().stepped_aside.Increment();
    free_window_slot();
  }

  // One timer per message: in-progress heartbeats every third of AckWait (two chances to
  // arrive before a redelivery), and the end of worker.message_timeout.
  // Also steps the message aside (see pull_consumer.hpp) 250 ms after it started, when
  // its handler allows it by then; `aside` tells the worker loop.
  asio::awaitable<void> watchdog(queue_message& msg, bool& aside) {
    const auto beat = std::max(cfg.consumer.ack_wait / 3, milliseconds(100));
    const auto started = steady_clock::now();
    const auto give_up = started + opts.message_timeout;
    auto next_beat = started + beat;
    bool aside_checked = false;
    asio::steady_timer timer(io);
    for (;;) {
      auto wake = std::min(next_beat, give_up);
      if (!aside_checked) wake = std::min(wake, started + step_aside_after);
      timer.expires_at(wake);
      // Cancelled (the handler finished first) is the usual end: no exception for it, which
      // cost more than the rest of handling a skipped event.
      auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
      if (ec) co_return;
      const auto now = steady_clock::now();
      if (now >= give_up) co_return;
      if (!aside_checked && now >= started + step_aside_after) {
        aside_checked = true;
        if (msg.may_step_aside()) step_aside(aside);
      }
      if (now >= next_beat) {
        next_beat = now + beat;
        jetstream_ack::in_progress(conn.raw(), msg.raw());
        consumer_metrics::get().heartbeats.Increment();
      }
    }
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

  // Returns whether the message stepped aside (its window slot was freed already).
  asio::awaitable<bool> process(queue_message& msg) {
    message_outcome outcome;
    bool aside = false;
    msg.on_step_aside_now([this, &aside] { step_aside(aside); });
    auto result = co_await (guarded_handler(msg) || watchdog(msg, aside) || wait_hard_stop());
    msg.on_step_aside_now({});
    switch (result.index()) {
      case 0: outcome = std::get<0>(std::move(result)); break;
      case 1:
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
    co_await settler.settle(msg, outcome);
    co_return aside;
  }
};

pull_consumer::pull_consumer(asio::any_io_executor io, asio::thread_pool& blocking, nats_connection& conn,
                             const config::queue_config& cfg, consumer_options opts, message_handler handler)
    : impl_(std::make_shared<impl>(io, blocking, conn, cfg, opts, std::move(handler))) {}

pull_consumer::~pull_consumer() {
  impl_->stopping = true;
  impl_->close_subscription();  // no nats.c callback may run once this object is gone
}

asio::awaitable<void> pull_consumer::start() {
  auto self = impl_;
  auto subscribe = [p = self.get()] { p->subscribe(); };
  co_await run_blocking(self->blocking, subscribe);
  // Twice `concurrency` worker coroutines: the second half takes the messages fetched in the
  // place of those that stepped aside.
  for (std::size_t i = 0; i < self->worker_count(); ++i) self->workers.spawn(self->worker_loop(), self);
  self->background.spawn(self->keep_requests_open(), self);
  self->send_pull_requests();
  log::info("consuming", {{"stream", self->cfg.stream.name},
                          {"consumer", self->cfg.consumer.durable},
                          {"concurrency", static_cast<std::int64_t>(self->opts.concurrency)}});
}

asio::awaitable<void> pull_consumer::drain(steady_clock::time_point deadline) {
  auto self = impl_;
  self->stopping = true;
  self->tick.cancel();
  log::info("draining: fetching stopped", {{"in_flight", static_cast<std::int64_t>(self->in_flight.load())}});
  // Gently: one stop sentinel per worker, queued behind the messages already handed over, so
  // each worker finishes what it holds and leaves. The channel (3 x concurrency) has room
  // for them: at most `concurrency` real messages are ever in it.
  for (std::size_t i = 0; i < self->worker_count(); ++i)
    self->channel.try_send(boost::system::error_code{}, std::shared_ptr<queue_message>{});
  if (!co_await self->workers.wait_until(deadline)) {
    log::warn("shutdown wait exceeded; returning unfinished messages to the queue",
              {{"in_flight", static_cast<std::int64_t>(self->in_flight.load())}});
    // Then hard: expires_at(min) rather than cancel(), so a message that starts after this
    // point does not wait for a cancellation that has already happened.
    self->hard_stop.expires_at(steady_clock::time_point::min());
    co_await self->workers.wait();
  }
  co_await self->background.wait();
  // Requests still open would deliver into an inbox nobody reads, and those messages would
  // wait out AckWait: keep handing arrivals back until the server has closed every request.
  steady_clock::time_point requests_end;
  bool open;
  {
    std::lock_guard lock(self->window_mutex);
    open = self->window.outstanding() > 0;
    requests_end = self->last_request_sent + self->cfg.fetch_expires + milliseconds(500);
  }
  if (open) {
    self->requests_over.expires_at(requests_end);
    co_await self->requests_over.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  auto unsubscribe = [p = self.get()] { p->close_subscription(); };
  co_await run_blocking(self->blocking, unsubscribe);
  self->give_back_leftovers();
  self->channel.close();
  log::info("drained");
}

void pull_consumer::set_paused(bool paused) {
  impl_->paused = paused;
  if (!paused) impl_->send_pull_requests();
}

std::size_t pull_consumer::in_flight() const { return impl_->in_flight; }

}  // namespace archie::queue
