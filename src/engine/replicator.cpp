#include "engine/replicator.hpp"

#include "engine/engine_metrics.hpp"
#include "event/minio_event.hpp"
#include "log/logger.hpp"
#include "pipe/fan_out_copy.hpp"
#include "pipe/part_buffer_pool.hpp"
#include "route/router.hpp"
#include "store/fs/fs_destination.hpp"
#include "store/gcs/gcs_client.hpp"
#include "store/gcs/gcs_destination.hpp"
#include "store/s3/s3_client.hpp"
#include "store/s3/s3_destination.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <map>
#include <mutex>
#include <stdexcept>

namespace archie::engine {
namespace asio = boost::asio;
using queue::message_outcome;
using store::error_kind;
using store::store_error;
using steady = std::chrono::steady_clock;

namespace {

constexpr std::uint64_t max_single_copy = 5ull << 30;  // S3 CopyObject limit

double seconds_since(steady::time_point t) { return std::chrono::duration<double>(steady::now() - t).count(); }

// How a store failure becomes a message outcome. Retryable and permission problems wait
// (nak with backoff): an operator can fix them and nothing is lost. Permanent refusals end
// the message (term, dead-lettered) because redelivery cannot help.
message_outcome outcome_for(const store_error& e, const char* code_prefix) {
  std::string code = std::string(code_prefix) + "_" + store::to_string(e.kind);
  if (e.kind == error_kind::permanent) return message_outcome::term(code, e.describe());
  return message_outcome::nak(code, e.describe());
}

int severity(const message_outcome& o) {
  switch (o.what) {
    case message_outcome::kind::ack: return 0;
    case message_outcome::kind::term: return 1;
    case message_outcome::kind::nak: return 2;  // a retry must not be swallowed by a term
  }
  return 0;
}

const char* state_name(message_outcome::kind k) {
  switch (k) {
    case message_outcome::kind::ack: return "ack";
    case message_outcome::kind::nak: return "nak";
    case message_outcome::kind::term: return "term";
  }
  return "ack";
}

struct store_health {
  std::mutex mutex;
  bool ok = true;
  std::string detail = "not checked yet";
};

}  // namespace

struct replicator::impl {
  asio::any_io_executor io;
  asio::thread_pool& blocking;
  config::config cfg;
  route::router router;
  pipe::part_buffer_pool pool;
  std::map<std::string, std::unique_ptr<store::s3::s3_client>> s3_clients;
  std::map<std::string, std::unique_ptr<store::gcs::gcs_client>> gcs_clients;  // before destinations: outlives them
  std::map<std::string, std::unique_ptr<store::destination>> destinations;
  std::map<std::string, std::shared_ptr<store_health>> health;  // "store/bucket"

  impl(asio::any_io_executor ex, asio::thread_pool& pool_threads, const config::config& c)
      : io(ex),
        blocking(pool_threads),
        cfg(c),
        router(c.routes),
        pool(ex, static_cast<std::size_t>(c.replication.part_size_mib) << 20,
             static_cast<std::size_t>(c.replication.buffer_budget_mib) << 20) {
    for (const auto& [name, sc] : cfg.stores) {
      if (const auto* s3 = std::get_if<config::s3_store_config>(&sc)) {
        auto client = std::make_unique<store::s3::s3_client>(io, name, *s3);
        destinations[name] = std::make_unique<store::s3::s3_destination>(*client);
        s3_clients[name] = std::move(client);
      } else if (const auto* gcs = std::get_if<config::gcs_store_config>(&sc)) {
        // The pool signs service-account JWTs and reads the key file off the I/O thread.
        auto client = std::make_unique<store::gcs::gcs_client>(io, name, *gcs, &blocking);
        destinations[name] = std::make_unique<store::gcs::gcs_destination>(*client);
        gcs_clients[name] = std::move(client);
      } else if (const auto* fs = std::get_if<config::fs_store_config>(&sc)) {
        destinations[name] = std::make_unique<store::fs::fs_destination>(name, *fs, blocking);
      }
    }
    for (const auto& r : cfg.routes) {
      health[r.source.store + "/" + r.source.bucket] = std::make_shared<store_health>();
      for (const auto& d : r.destinations) {
        if (!destinations.count(d.store))
          throw std::runtime_error("route destination store \"" + d.store + "\" is not configured");
        health[d.store + "/" + d.bucket] = std::make_shared<store_health>();
      }
    }
    if (cfg.routes.empty()) log::warn("no [[route]] configured: every event will be handled as unrouted");
  }

  void count(const message_outcome& o, const std::string& event, const char* type) {
    engine_metrics::get()
        .processed.Add({{"state", state_name(o.what)}, {"code", o.code}, {"event", event}, {"eventType", type}})
        .Increment();
  }

  // Source missing or not yet at the expected ETag: wait with backoff, then give up.
  message_outcome retry_then_term(const queue::delivery_info& d, std::string code, std::string reason) {
    if (static_cast<std::int64_t>(d.deliveries) >= cfg.replication.max_retries)
      return message_outcome::term(code, reason + " (after " + std::to_string(d.deliveries) + " deliveries)");
    return message_outcome::nak(std::move(code), std::move(reason));
  }

  asio::awaitable<message_outcome> copy(const event::object_event& ev, const route::decision& d,
                                        const queue::delivery_info& delivery, bool force) {
    auto started = steady::now();
    const auto& src_cfg = d.route->cfg.source;
    auto& source = *s3_clients.at(src_cfg.store);
    auto head = co_await source.head_object(ev.bucket, ev.key);
    if (!head) {
      if (head.error().kind == error_kind::not_found)
        co_return retry_then_term(delivery, "source_not_found", head.error().describe());
      co_return outcome_for(head.error(), "source");
    }
    store::object_info meta = head.value();
    if (cfg.replication.wait_for_matching_etag && !ev.etag.empty() && meta.etag != ev.etag)
      co_return retry_then_term(delivery, "etag_mismatch",
                                "source ETag " + meta.etag + " differs from the event's " + ev.etag);
    meta.user_metadata.emplace_back(store::source_etag_metadata, meta.etag);

    // Idempotency: a destination that already holds this source ETag is done.
    std::vector<route::target> pending;
    for (const auto& t : d.targets) {
      auto& dest = *destinations.at(t.store);
      auto recorded = co_await dest.recorded_source_etag(t.bucket, t.key);
      if (!recorded) co_return outcome_for(recorded.error(), "destination");
      if (!force && recorded.value() == meta.etag) continue;
      pending.push_back(t);
    }
    if (pending.empty()) {
      log::info("already replicated", {{"key", ev.key}, {"bucket", ev.bucket}, {"etag", meta.etag}});
      co_return message_outcome::ack("already_replicated");
    }

    // Same S3 store (endpoint and credentials) as the source: let the server copy.
    std::optional<store_error> failure;
    pipe::copy_request req;
    req.source = &source;
    req.bucket = ev.bucket;
    req.key = ev.key;
    req.meta = meta;
    req.parts_in_flight = static_cast<std::size_t>(cfg.replication.parts_in_flight);
    for (const auto& t : pending) {
      if (t.store == src_cfg.store && meta.size <= max_single_copy) {
        auto r = co_await source.copy_object(ev.bucket, ev.key, t.bucket, t.key, &meta);
        if (!r && !failure) failure = r.error();
        continue;
      }
      req.targets.push_back({destinations.at(t.store).get(), t.bucket, t.key});
    }
    if (!req.targets.empty()) {
      auto report = co_await pipe::fan_out_copy(io, pool, req);
      if (const auto* e = report.first_error(); e && !failure) failure = *e;
      if (report.source_error && report.source_error->kind == error_kind::precondition_failed)
        failure = *report.source_error;  // changed mid-copy: the newer version has its own event
    }
    auto& m = engine_metrics::get();
    if (failure) {
      if (failure->kind == error_kind::precondition_failed)
        co_return message_outcome::nak("source_changed", failure->describe());
      if (failure->kind == error_kind::not_found && failure->store == src_cfg.store)
        co_return retry_then_term(delivery, "source_not_found", failure->describe());
      co_return outcome_for(*failure, failure->store == src_cfg.store ? "source" : "destination");
    }
    double secs = seconds_since(started);
    m.transfer_duration.Observe(secs);
    m.transfer_size.Observe(static_cast<double>(meta.size));
    if (secs > 0) m.transfer_rate.Observe(static_cast<double>(meta.size) / secs);
    m.transfer_delivered.Increment();
    m.transfer_queue_duration.Observe(
        std::chrono::duration<double>(std::chrono::system_clock::now() - delivery.published).count());
    std::string dests;
    for (const auto& t : pending) dests += (dests.empty() ? "" : ",") + t.store + ":" + t.bucket + "/" + t.key;
    log::info("replicated", {{"key", ev.key},
                             {"bucket", ev.bucket},
                             {"event", ev.event_name},
                             {"seq", delivery.stream_sequence},
                             {"deliveries", delivery.deliveries},
                             {"bytes", meta.size},
                             {"duration_ms", static_cast<std::int64_t>(secs * 1000)},
                             {"rate_mb_s", secs > 0 ? static_cast<double>(meta.size) / secs / 1e6 : 0.0},
                             {"destinations", dests}});
    co_return message_outcome::ack("copied");
  }

  asio::awaitable<message_outcome> remove(const event::object_event& ev, const route::decision& d,
                                          const queue::delivery_info& delivery) {
    auto started = steady::now();
    auto& source = *s3_clients.at(d.route->cfg.source.store);
    // The payload has no ordering guarantee: if the key exists again, this delete is stale.
    auto head = co_await source.head_object(ev.bucket, ev.key);
    if (head) {
      engine_metrics::get().stale_deletes.Add({}).Increment();
      log::info("stale delete not propagated: the key exists again at the source",
                {{"key", ev.key}, {"bucket", ev.bucket}, {"seq", delivery.stream_sequence}});
      co_return message_outcome::ack("stale_delete");
    }
    if (head.error().kind != error_kind::not_found) co_return outcome_for(head.error(), "source");
    for (const auto& t : d.targets) {
      auto& dest = *destinations.at(t.store);
      if (cfg.replication.delete_not_found == "retry") {
        auto recorded = co_await dest.recorded_source_etag(t.bucket, t.key);
        if (recorded && recorded.value().empty())
          co_return retry_then_term(delivery, "destination_not_found", t.store + ":" + t.bucket + "/" + t.key);
      }
      auto r = co_await dest.remove(t.bucket, t.key);
      if (!r) co_return outcome_for(r.error(), "destination");
    }
    auto& m = engine_metrics::get();
    m.delete_duration.Observe(seconds_since(started));
    m.delete_delivered.Increment();
    m.delete_queue_duration.Observe(
        std::chrono::duration<double>(std::chrono::system_clock::now() - delivery.published).count());
    log::info("removed", {{"key", ev.key}, {"bucket", ev.bucket}, {"seq", delivery.stream_sequence},
                          {"deliveries", delivery.deliveries}, {"destinations", d.targets.size()}});
    co_return message_outcome::ack("removed");
  }

  asio::awaitable<message_outcome> handle_record(const event::object_event& ev, const queue::delivery_info& delivery) {
    using event::event_action;
    if (ev.action == event_action::skip) co_return message_outcome::ack("skipped");
    if (ev.action == event_action::copy_metadata && cfg.replication.metadata_events == "skip")
      co_return message_outcome::ack("metadata_skipped");
    if (ev.action == event_action::remove && ev.lifecycle_expiry && cfg.replication.ignore_lifecycle_expiry)
      co_return message_outcome::ack("lifecycle_skipped");
    auto d = router.route(ev.bucket, ev.key);
    if (!d.route) {
      if (cfg.replication.unrouted_events == "term")
        co_return message_outcome::term("unrouted", "no route covers bucket " + ev.bucket);
      co_return message_outcome::ack("unrouted");
    }
    if (ev.action == event_action::remove) {
      if (d.route->exclude_remove.matches(ev.key)) co_return message_outcome::ack("excluded");
      co_return co_await remove(ev, d, delivery);
    }
    if (d.route->exclude_copy.matches(ev.key)) co_return message_outcome::ack("excluded");
    // Metadata-only events must overwrite even when the ETag is unchanged.
    co_return co_await copy(ev, d, delivery, ev.action == event_action::copy_metadata);
  }

  asio::awaitable<message_outcome> handle(queue::queue_message& msg) {
    auto decoded = event::decode_minio_event(msg.data());
    if (auto* err = std::get_if<event::decode_error>(&decoded)) {
      message_outcome o = message_outcome::term("malformed_event", err->code + ": " + err->reason);
      log::warn("malformed event", {{"seq", msg.delivery().stream_sequence}, {"code", err->code}, {"reason", err->reason}});
      count(o, "unknown", "malformed");
      co_return o;
    }
    message_outcome overall = message_outcome::ack("empty");
    for (const auto& ev : std::get<0>(decoded)) {
      message_outcome o;
      try {
        o = co_await handle_record(ev, msg.delivery());
      } catch (const std::exception& e) {
        o = message_outcome::nak("internal_error", e.what());
      }
      // Unknown names come from outside: label them "other" to keep the label set bounded.
      bool unknown = ev.action == event::event_action::skip && ev.skip_reason == "unknown_event_name";
      count(o, unknown ? std::string("other") : ev.event_name, event::to_string(ev.action));
      if (o.what == message_outcome::kind::ack && o.code != "copied" && o.code != "removed")
        log::info("event skipped", {{"key", ev.key}, {"bucket", ev.bucket}, {"event", ev.event_name},
                                    {"seq", msg.delivery().stream_sequence}, {"code", o.code}});
      if (o.what != message_outcome::kind::ack)
        log::warn("event not done", {{"key", ev.key}, {"bucket", ev.bucket}, {"event", ev.event_name},
                                     {"seq", msg.delivery().stream_sequence}, {"deliveries", msg.delivery().deliveries},
                                     {"outcome", state_name(o.what)}, {"code", o.code}, {"reason", o.reason}});
      if (severity(o) >= severity(overall)) overall = std::move(o);
    }
    co_return overall;
  }

  asio::awaitable<void> health_loop() {
    asio::steady_timer timer(io);
    for (;;) {
      for (auto& [id, h] : health) {
        auto slash = id.find('/');
        std::string store_name = id.substr(0, slash), bucket = id.substr(slash + 1);
        auto& dest = *destinations.at(store_name);
        auto r = co_await dest.check_bucket(bucket);
        std::lock_guard lock(h->mutex);
        h->ok = r.ok();
        h->detail = r ? "reachable" : r.error().describe();
      }
      timer.expires_after(std::chrono::seconds(10));
      co_await timer.async_wait(asio::use_awaitable);
    }
  }
};

replicator::replicator(asio::any_io_executor io, asio::thread_pool& blocking, const config::config& cfg)
    : impl_(std::make_unique<impl>(io, blocking, cfg)) {}
replicator::~replicator() = default;

asio::awaitable<message_outcome> replicator::handle(queue::queue_message& msg) { return impl_->handle(msg); }

void replicator::register_checks(service::readiness& ready) {
  for (auto& [id, h] : impl_->health) {
    auto health = h;
    ready.add_check("store " + id, [health]() -> service::check_result {
      std::lock_guard lock(health->mutex);
      return {health->ok, health->detail};
    });
  }
}

void replicator::start_health_checks() {
  asio::co_spawn(impl_->io, impl_->health_loop(), asio::detached);
}

}  // namespace archie::engine
