#include "queue/pull_consumer.hpp"

#include "async/run_blocking.hpp"
#include "async/task_group.hpp"
#include "log/logger.hpp"
#include "queue/consumer_metrics.hpp"
#include "queue/message_settler.hpp"
#include "queue/nats_error.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <condition_variable>
#include <mutex>
#include <thread>

namespace archie::queue {
using async::run_blocking;
namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

struct pull_consumer::impl {
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
  message_settler settler;
  async::task_group workers;

  std::mutex slots_mutex;
  std::condition_variable slots_cv;
  std::size_t free_slots;
  std::size_t refill_at;  ///< free slots that make a pull worth its round trip
  std::atomic<bool> stopping{false};
  std::atomic<bool> paused{false};
  std::atomic<std::size_t> in_flight{0};

  impl(asio::any_io_executor ex, asio::thread_pool& pool, nats_connection& c, const config::queue_config& q,
       consumer_options o, message_handler h)
      : io(ex), blocking(pool), conn(c), cfg(q), opts(o), handler(std::move(h)),
        channel(ex, 2 * o.concurrency), hard_stop(ex, steady_clock::time_point::max()),
        settler(ex, pool, c, q), workers(ex, "queue workers"), free_slots(o.concurrency),
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
    auto& m = consumer_metrics::get();

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
          settler.give_back(*msg);
          release_slot();
        }
      }
      natsMsgList_Destroy(&list);
    }
  }

  void release_slot() {
    std::size_t still_in_flight = --in_flight;
    consumer_metrics::get().in_flight.Decrement();
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

  // Until it receives the stop sentinel (a null message) queued behind the real ones.
  asio::awaitable<void> worker_loop() {
    for (;;) {
      auto [ec, msg] = co_await channel.async_receive(asio::as_tuple(asio::use_awaitable));
      if (ec || !msg) break;
      co_await process(*msg);
      release_slot();
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

  asio::awaitable<void> heartbeat(queue_message& msg) {
    // A third of AckWait leaves two chances for a heartbeat to arrive before redelivery.
    asio::steady_timer timer(io);
    for (;;) {
      timer.expires_after(std::max(cfg.consumer.ack_wait / 3, milliseconds(100)));
      co_await timer.async_wait(asio::use_awaitable);
      natsMsg_InProgress(msg.raw(), nullptr);
      consumer_metrics::get().heartbeats.Increment();
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
    co_await settler.settle(msg, outcome);
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
  for (std::size_t i = 0; i < self->opts.concurrency; ++i) self->workers.spawn(self->worker_loop(), self);
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
  // Gently: one stop sentinel per worker, queued behind the messages already handed over, so
  // each worker finishes what it holds and leaves. The channel has room for them: at most
  // `concurrency` real messages are ever in it.
  for (std::size_t i = 0; i < self->opts.concurrency; ++i)
    self->channel.try_send(boost::system::error_code{}, std::shared_ptr<queue_message>{});
  if (!co_await self->workers.wait_until(deadline)) {
    log::warn("shutdown wait exceeded; returning unfinished messages to the queue",
              {{"in_flight", static_cast<std::int64_t>(self->in_flight.load())}});
    // Then hard: expires_at(min) rather than cancel(), so a message that starts after this
    // point does not wait for a cancellation that has already happened.
    self->hard_stop.expires_at(steady_clock::time_point::min());
    co_await self->workers.wait();
  }
  // The fetcher may sit in a pull request for up to fetch_expires; wait for it off-loop.
  auto join_fetcher = [p = self.get()] {
    if (p->fetcher.joinable()) p->fetcher.join();
  };
  co_await run_blocking(self->blocking, join_fetcher);
  self->give_back_leftovers();
  self->channel.close();
  log::info("drained");
}

void pull_consumer::set_paused(bool paused) {
  impl_->paused = paused;
  impl_->slots_cv.notify_all();
}

std::size_t pull_consumer::in_flight() const { return impl_->in_flight; }

}  // namespace archie::queue
