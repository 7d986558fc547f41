#include "service/worker_service.hpp"

#include "archie_version.hpp"
#include "service/admin_server.hpp"
#include "log/logger.hpp"
#include "metrics/registry.hpp"
#include "queue/backlog_monitor.hpp"
#include "fleet/worker_registry.hpp"
#include "async/exponential_backoff.hpp"
#include "async/run_blocking.hpp"
#include "queue/nats_connection.hpp"
#include "queue/nats_error.hpp"
#include "queue/provisioning.hpp"
#include "health/readiness.hpp"
#include "service/exit_codes.hpp"
#include "service/shutdown.hpp"
#include "service/status_refresher.hpp"

#include <boost/asio/steady_timer.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <prometheus/gauge.h>

#include <atomic>
#include <mutex>

namespace archie::service {
namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

void publish_build_info() {
  prometheus::BuildGauge()
      .Name("archie_build_info")
      .Help("Always 1; labels carry the running archie version")
      .Register(metrics::registry())
      .Add({{"version", ARCHIE_VERSION}, {"commit", ARCHIE_COMMIT}, {"build_date", ARCHIE_BUILD_DATE}})
      .Set(1);
}

// State shared between start-up, readiness checks (HTTP handler) and the drain hook.
struct queue_runtime {
  std::mutex mutex;
  std::unique_ptr<queue::nats_connection> connection;
  std::unique_ptr<queue::pull_consumer> consumer;
  std::unique_ptr<queue::backlog_monitor> backlog;
  std::unique_ptr<fleet::worker_registry> registry;
  std::atomic<bool> stopping{false};
};

// Connects (retrying forever: NATS being down at start only delays work), provisions and
// starts consuming. A refused provisioning or binding is fatal: it needs an operator.
asio::awaitable<void> start_queue(const config::config& cfg, worker_context& ctx, queue_runtime& rt,
                                  queue::message_handler handler, shutdown_coordinator& shutdown, int& exit_code) {
  async::exponential_backoff retry(ctx.io, config::backoff_config{500ms, 2.0, cfg.queue.nats.reconnect_wait_max, 0.2});
  std::unique_ptr<queue::nats_connection> conn;
  while (!rt.stopping) {
    try {
      auto connect_call = [&] { return queue::nats_connection::connect(cfg.queue.nats); };
      conn = co_await async::run_blocking(ctx.blocking, connect_call);
      break;
    } catch (const std::exception& e) {
      log::warn("cannot connect to NATS yet; retrying", {{"error", e.what()}, {"attempt", retry.attempts() + 1}});
    }
    co_await retry.wait();
  }
  if (!conn) co_return;
  try {
    jsCtx* js = conn->jetstream();
    auto provision_call = [&] { return queue::provision(js, cfg.queue); };
    co_await async::run_blocking(ctx.blocking, provision_call);
    // The registry first: its first heartbeat (at once) gives the budgets' shares before the
    // first message is fetched.
    auto registry = std::make_unique<fleet::worker_registry>(ctx.io, ctx.blocking, js, cfg.fleet);
    if (ctx.on_fleet_position) registry->on_position(ctx.on_fleet_position);
    if (!rt.stopping) asio::co_spawn(ctx.io, registry->run(), asio::detached);
    log::info("registered in the worker registry", {{"bucket", cfg.fleet.registry_bucket}, {"worker", registry->id()}});
    auto consumer = std::make_unique<queue::pull_consumer>(
        ctx.io, ctx.blocking, *conn, cfg.queue,
        queue::consumer_options{static_cast<std::size_t>(cfg.worker.concurrency), cfg.worker.message_timeout},
        std::move(handler));
    co_await consumer->start();
    // Same cadence as KEDA's default polling; two JetStream API requests per poll and worker.
    auto backlog = std::make_unique<queue::backlog_monitor>(ctx.io, ctx.blocking, js, cfg.queue.stream.name,
                                                            cfg.queue.consumer.durable, 15s);
    if (!rt.stopping) asio::co_spawn(ctx.io, backlog->run(), asio::detached);
    std::lock_guard lock(rt.mutex);
    rt.connection = std::move(conn);
    rt.consumer = std::move(consumer);
    rt.backlog = std::move(backlog);
    rt.registry = std::move(registry);
  } catch (const std::exception& e) {
    log::error("cannot start consuming", {{"error", e.what()}});
    exit_code = exit_failed;
    std::lock_guard lock(rt.mutex);
    rt.connection = std::move(conn);
    shutdown.request_stop("start-up failure");
  }
  if (rt.stopping) shutdown.request_stop("start-up finished after shutdown");
}

}  // namespace

int run_worker(const config::config& cfg, handler_factory make_handler) {
  // How long past shutdown_wait cancelled copies may take to abort their uploads.
  constexpr std::chrono::seconds abort_grace{5};
  asio::io_context io(1);
  // Blocking nats.c calls (AckSync, JetStream API, connect) and file I/O run here, never on
  // the loop; one thread per transfer slot so acks never queue behind each other.
  asio::thread_pool blocking(static_cast<std::size_t>(std::clamp<std::int64_t>(cfg.worker.concurrency, 4, 64)));
  health::readiness ready;
  std::vector<std::function<void()>> past_deadline;
  std::function<void(fleet::fleet_position)> on_fleet_position;
  worker_context ctx{io.get_executor(), blocking, ready, past_deadline, on_fleet_position};
  publish_build_info();
  int exit_code = exit_ok;

  // Signals are caught from here on: a SIGTERM that arrives during start-up still drains.
  shutdown_coordinator shutdown(io.get_executor(), ready, cfg.worker.shutdown_wait);

  std::unique_ptr<admin_server> admin;
  try {
    admin = std::make_unique<admin_server>(io.get_executor(), cfg.http, ready);
  } catch (const std::exception& e) {
    log::error("cannot start admin HTTP server",
               {{"address", cfg.http.address}, {"port", cfg.http.port}, {"error", e.what()}});
    return exit_failed;
  }
  log::info("admin server listening", {{"address", cfg.http.address}, {"port", admin->port()}});

  queue_runtime rt;
  ready.add_check("nats", [&rt]() -> health::check_result {
    std::lock_guard lock(rt.mutex);
    if (!rt.connection) return {false, "not connected yet"};
    return {rt.connection->connected(), rt.connection->state_text()};
  });
  ready.add_check("consumer", [&rt]() -> health::check_result {
    std::lock_guard lock(rt.mutex);
    return {rt.consumer != nullptr, rt.consumer ? "consuming" : "not started"};
  });

  // /status and /status.json: the fleet as `archie status` shows it, read only when asked.
  status_refresher status(io.get_executor(), blocking, cfg, [&rt]() -> jsCtx* {
    std::lock_guard lock(rt.mutex);
    return rt.connection && !rt.stopping ? rt.connection->jetstream() : nullptr;
  });
  admin->set_status_source([&status] { return status.latest(); });

  shutdown.add_drain_hook([&](std::chrono::steady_clock::time_point deadline) -> asio::awaitable<void> {
    rt.stopping = true;
    queue::pull_consumer* consumer;
    queue::backlog_monitor* backlog;
    fleet::worker_registry* registry;
    {
      std::lock_guard lock(rt.mutex);
      consumer = rt.consumer.get();
      backlog = rt.backlog.get();
      registry = rt.registry.get();
    }
    if (backlog) co_await backlog->stop();
    // The consumer cancels its handlers at the deadline, and cancelled copies abort their
    // uploads. A server that no longer answers would hold them for its I/O timeout (and
    // retries): after a short grace for those aborts, cut every store request still waiting.
    asio::steady_timer cut_requests(io, deadline + abort_grace);
    cut_requests.async_wait([&past_deadline](boost::system::error_code ec) {
      if (ec) return;  // drained in time
      log::warn("shutdown wait exceeded: cutting store requests in flight; their messages will be redelivered");
      for (auto& hook : past_deadline) hook();
    });
    if (consumer) co_await consumer->drain(deadline);
    cut_requests.cancel();
    if (registry) co_await registry->stop();  // after the drain: the fleet sees it working until then
    std::unique_ptr<queue::nats_connection> conn;
    {
      std::lock_guard lock(rt.mutex);
      conn = std::move(rt.connection);
    }
    auto close_call = [&] { conn->close(); };
    if (conn) co_await async::run_blocking(blocking, close_call);
  });
  shutdown.on_finished([&] {
    admin->stop();
    io.stop();
  });

  asio::co_spawn(io, admin->serve(), asio::detached);
  asio::co_spawn(io, shutdown.watch(), asio::detached);
  asio::co_spawn(io, start_queue(cfg, ctx, rt, make_handler(ctx), shutdown, exit_code), asio::detached);
  log::info("archie started", {{"version", ARCHIE_VERSION}, {"concurrency", cfg.worker.concurrency}});
  io.run();
  {
    std::lock_guard lock(rt.mutex);
    rt.consumer.reset();
    rt.registry.reset();
  }
  blocking.join();
  rt.connection.reset();
  log::info("archie stopped", {{"exit_code", exit_code}});
  return exit_code;
}

}  // namespace archie::service
