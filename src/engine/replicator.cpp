#include "engine/replicator.hpp"

#include "engine/convergence.hpp"
#include "engine/elapsed.hpp"
#include "engine/engine_metrics.hpp"
#include "engine/history_sync.hpp"
#include "engine/key_locks.hpp"
#include "engine/record_policy.hpp"
#include "engine/replication_report.hpp"
#include "engine/transfer_slots.hpp"
#include "async/random_seed.hpp"
#include "event/minio_event.hpp"
#include "log/logger.hpp"
#include "pipe/part_buffer_pool.hpp"
#include "route/router.hpp"
#include "store/store_catalog.hpp"

#include <boost/asio/error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <stdexcept>
#include <utility>

namespace archie::engine {
namespace asio = boost::asio;
using queue::message_outcome;
using store::error_kind;
using store::store_error;
using steady = std::chrono::steady_clock;

namespace {


stage_times times_for(const queue::delivery_info& delivery) {
  stage_times times;
  times.queued_ms =
      std::chrono::duration<double, std::milli>(std::chrono::system_clock::now() - delivery.published).count();
  return times;
}

convergence_limits limits_for(std::size_t part_size, std::int64_t parts_in_flight) {
  convergence_limits l;  // max_rounds: its default
  l.part_size = part_size;
  l.parts_in_flight = static_cast<std::size_t>(parts_in_flight);
  return l;
}

// What one GET told: the object's state, and what it read of it: the first part (all of a
// small object) and for a larger one the rest of the answer (none when no buffer was free or
// the source kept no answer open).
struct fetched_object {
  source_state state;
  pipe::read_ahead ahead;
};

}  // namespace

struct replicator::impl {
  asio::any_io_executor io;
  config::config cfg;
  store::store_catalog& stores;
  route::router router;
  pipe::part_buffer_pool pool;
  convergence_limits limits;
  key_locks locks;
  fleet::budget_book* budgets;
  std::mt19937_64 rng{async::random_seed()};

  impl(asio::any_io_executor ex, const config::config& c, store::store_catalog& s, fleet::budget_book* b)
      : io(ex),
        cfg(c),
        stores(s),
        router(c.routes),
        pool(ex, static_cast<std::size_t>(c.replication.part_size_mib) << 20,
             static_cast<std::size_t>(c.replication.buffer_budget_mib) << 20),
        limits{limits_for(pool.part_size(), c.replication.parts_in_flight)},
        locks(ex),
        budgets(b) {
    if (cfg.routes.empty()) log::warn("no [[route]] configured: every event will be handled as unrouted");
  }

  void count(const message_outcome& o, std::string_view event, const char* type) {
    engine_metrics::get()
        .processed.Add({{"state", queue::to_string(o.what)}, {"code", o.code}, {"event", std::string(event)}, {"event_type", type}})
        .Increment();
  }

  // The source has nothing (yet) for this event: wait with backoff in case the source shows
  // it late, then settle the event as superseded. The newer state of the key (a delete or an
  // overwrite) has its own event, so nothing is lost and nobody needs to look at it.
  message_outcome retry_then_superseded(const queue::delivery_info& d, std::string code, std::string reason) {
    if (!retries_exhausted(d)) return message_outcome::nak(std::move(code), std::move(reason));
    engine_metrics::get().superseded.Add({{"cause", code}}).Increment();
    return message_outcome::ack_without_work("superseded");
  }

  bool retries_exhausted(const queue::delivery_info& d) const {
    return static_cast<std::int64_t>(d.deliveries) >= cfg.replication.max_retries;
  }

  // A first delivery: one GET tells what a HEAD would (size, ETag, metadata: the same
  // headers; the size from Content-Range when ranged) and brings the bytes of an object the
  // event says fits one part, or the first part of a larger one, whose answer goes on with
  // as many of the next parts as there are buffers free now (the pipe reads them at once):
  // a medium object is asked for once. Any surprise (grown past the buffer,
  // gone, an error) returns nothing, and the caller takes the usual HEAD path, which knows
  // how to settle each case.
  asio::awaitable<std::optional<fetched_object>> fetch_first_part(store::source& source, const event::object_event& ev,
                                                                  const queue::delivery_info& delivery) {
    const std::size_t part_size = pool.part_size();
    if (delivery.deliveries > 1 || !ev.has_size || ev.size == 0) co_return std::nullopt;
    // Room for some growth since the event: an overwrite a little larger still fits.
    constexpr std::size_t slack = 64 * 1024;
    const std::size_t room = std::min<std::size_t>(part_size, std::max<std::size_t>(ev.size, slack));
    auto buf = co_await pool.acquire(room);
    store::range_read first;
    // One part or less: the whole object, which must end within `room`. More: exactly its
    // first part (a ranged GET; the object goes on).
    first.may_end_early = ev.size <= part_size;
    pipe::read_ahead ahead;
    auto& rest_buffers = ahead.rest_buffers;
    if (!first.may_end_early) {
      const std::uint64_t parts_by_event = (ev.size + part_size - 1) / part_size;
      const std::uint64_t wanted =
          std::min<std::uint64_t>({parts_by_event, limits.parts_in_flight, source.parts_per_get()});
      for (std::size_t p = 1; p < wanted; ++p) {
        auto more = pool.try_acquire_part(ev.size, p);
        if (!more) break;
        rest_buffers.push_back(std::move(more));
      }
      if (!rest_buffers.empty()) {
        first.rest = &ahead.rest;
        first.rest_to = std::min<std::uint64_t>(ev.size, (rest_buffers.size() + 1) * part_size);
      }
    }
    auto got = co_await source.read(ev.bucket, ev.key, buf->bytes().first(room), first);
    if (!got || got->size == 0) co_return std::nullopt;
    // Larger than the buffer: usable only when the buffer holds exactly the first part.
    if (got->size > room && room < part_size) co_return std::nullopt;
    // An answer that goes on is used only when it goes on right after the first part.
    if (ahead.rest && ahead.rest->position() != room) ahead.rest.reset();
    if (!ahead.rest) rest_buffers.clear();
    auto tags_failed = co_await read_source_tags(source, ev.bucket, ev.key, got.value());
    if (tags_failed) co_return std::nullopt;  // the HEAD path settles it
    ahead.first_part = std::move(buf);
    co_return fetched_object{source_state{true, std::move(got.value())}, std::move(ahead)};
  }

  // Converges the key's destinations from `seen` and reports the event.
  asio::awaitable<message_outcome> converge_and_report(const event::object_event& ev, const route::decision& d,
                                                       const queue::delivery_info& delivery, convergence_job& job,
                                                       const stage_times& times) {
    auto result = co_await converge(io, pool, stores, limits, job);
    if (result.failure) co_return *result.failure;
    co_return report_converged(ev, delivery, d.targets, result, times);
  }

  convergence_job job_for(const event::object_event& ev, const route::decision& d,
                          const queue::delivery_info& delivery, source_state start) {
    convergence_job job;
    job.bucket = ev.bucket;
    job.key = ev.key;
    job.source_store = d.route->cfg.source.store;
    job.start = std::move(start);
    job.targets = d.targets;
    job.stream_sequence = delivery.stream_sequence;
    job.earlier_attempt_possible = delivery.deliveries > 1;
    return job;
  }

  asio::awaitable<message_outcome> copy(const event::object_event& ev, const record_plan& plan,
                                        const queue::delivery_info& delivery) {
    const route::decision& d = plan.route;
    auto& source = stores.source_for(d.route->cfg.source.store);
    stage_times times = times_for(delivery);
    auto source_started = steady::now();
    source_state seen;
    std::optional<fetched_object> fetched;
    if (!plan.metadata_only) fetched = co_await fetch_first_part(source, ev, delivery);
    if (fetched) {
      seen = std::move(fetched->state);
    } else {
      auto head = co_await read_source(source, ev.bucket, ev.key);
      if (!head) co_return outcome_for(head.error(), "source");
      seen = std::move(head.value());
    }
    times.source_ms = ms_since(source_started);
    if (!seen.exists)
      co_return retry_then_superseded(delivery, "source_not_found",
                                      "source " + ev.bucket + "/" + ev.key + " does not exist (deleted since?)");
    if (cfg.replication.wait_for_matching_etag && !ev.etag.empty() && seen.info.etag != ev.etag)
      co_return retry_then_superseded(delivery, "etag_mismatch",
                                      "source ETag " + seen.info.etag + " differs from the event's " + ev.etag);
    // Whatever version the source holds now is what the destinations must end with; an
    // event for an older version simply brings them up to date.
    auto job = job_for(ev, d, delivery, std::move(seen));
    // A copy onto itself is how S3 clients change an object's metadata: its replicas likely
    // hold the bytes already, so they are asked first (and given only the new metadata).
    const bool copy_event = ev.event_name == "s3:ObjectCreated:Copy";
    job.likely_missing = delivery.deliveries <= 1 && !plan.metadata_only && !copy_event;
    if (fetched) job.ahead = std::move(fetched->ahead);
    co_return co_await converge_and_report(ev, d, delivery, job, times);
  }

  asio::awaitable<message_outcome> remove(const event::object_event& ev, const route::decision& d,
                                          const queue::delivery_info& delivery) {
    auto& source = stores.source_for(d.route->cfg.source.store);
    stage_times times = times_for(delivery);
    // The payload has no ordering guarantee, and on a versioned source a delete may uncover
    // an older version: a key that exists is not removed (see converge_stale_delete).
    auto head = co_await read_source(source, ev.bucket, ev.key);
    if (!head) co_return outcome_for(head.error(), "source");
    if (head->exists) co_return co_await converge_stale_delete(ev, d, delivery, head.value(), times);
    if (std::all_of(d.targets.begin(), d.targets.end(), [](const route::target& t) { return t.keeps_deletes; }))
      co_return message_outcome::ack_without_work("deletes_ignored");
    if (cfg.replication.delete_not_found == config::delete_not_found_policy::retry) {
      for (const auto& t : d.targets) {
        if (t.keeps_deletes) continue;
        auto recorded = co_await stores.destination_for(t.store).recorded_source_etag(t.bucket, t.key);
        if (recorded && recorded.value().empty())
          co_return retry_then_term(delivery, "destination_not_found", t.store + ":" + t.bucket + "/" + t.key);
      }
    }
    auto job = job_for(ev, d, delivery, source_state{});
    co_return co_await converge_and_report(ev, d, delivery, job, times);
  }

  // A delete whose key exists at the source: the key was written again since (its own event
  // brings that version), or, on a versioned source, the deleted version was the latest and
  // an older one is current again (no other event will bring it). Either way the
  // destinations must hold the source's current version: those that do are left alone (a
  // HEAD each), the others get it now.
  asio::awaitable<message_outcome> converge_stale_delete(const event::object_event& ev, const route::decision& d,
                                                         const queue::delivery_info& delivery, source_state& current,
                                                         const stage_times& times) {
    auto job = job_for(ev, d, delivery, std::move(current));
    auto result = co_await converge(io, pool, stores, limits, job);
    if (result.failure) co_return *result.failure;
    if (!result.wrote) {
      engine_metrics::get().stale_deletes.Add({}).Increment();
      log::info("stale delete not propagated: the key exists again at the source",
                {{"key", ev.key}, {"bucket", ev.bucket}, {"seq", delivery.stream_sequence}});
      co_return message_outcome::ack_without_work("stale_delete");
    }
    log::info("delete not propagated: the key exists at the source; its current version was copied",
              {{"key", ev.key}, {"bucket", ev.bucket}, {"seq", delivery.stream_sequence},
               {"etag", result.final_state.info.etag}});
    co_return report_converged(ev, delivery, d.targets, result, times);
  }

  // Waiting for a destination copy to appear (delete_not_found = "retry"): the original
  // archie's behaviour, which ends in a dead letter.
  message_outcome retry_then_term(const queue::delivery_info& d, std::string code, std::string reason) {
    if (!retries_exhausted(d)) return message_outcome::nak(std::move(code), std::move(reason));
    return message_outcome::term(code, reason + " (after " + std::to_string(d.deliveries) + " deliveries)");
  }

  // The transfer gates of the stores a record writes to, by store name (the order in which
  // every record takes them).
  template <class Targets>
  std::vector<transfer_slots::gate> transfer_gates(const Targets& history_targets, const Targets& current_targets) {
    std::vector<transfer_slots::gate> gates;
    if (!budgets) return gates;
    auto add = [&](const std::string& store) {
      auto* g = budgets->gate_for_record(store);
      if (!g) return;
      for (const auto& have : gates)
        if (have.store == store) return;
      gates.push_back({store, g});
    };
    for (const auto& t : history_targets) add(t.store);
    for (const auto& t : current_targets) add(t.store);
    std::sort(gates.begin(), gates.end(), [](const auto& a, const auto& b) { return a.store < b.store; });
    return gates;
  }

  // True when every store the record writes to is one that some route does not write to:
  // then, while it waits on them, the worker's slot is better used by other routes' events.
  template <class Targets>
  bool writes_only_to_stores_others_skip(const Targets& history_targets, const Targets& current_targets) const {
    if (!budgets) return false;
    for (const auto* ts : {&history_targets, &current_targets})
      for (const auto& t : *ts)
        if (!budgets->shares_slots(t.store)) return false;
    return true;
  }

  asio::awaitable<message_outcome> handle_record(const event::object_event& ev, queue::queue_message& msg,
                                                 bool versions_only) {
    const queue::delivery_info& delivery = msg.delivery();
    record_plan plan = plan_record(ev, cfg.replication, router);
    if (plan.settled) co_return *plan.settled;
    const route::decision& d = plan.route;
    // One event per key at a time in this process (see key_locks.hpp).
    std::string lock_key = d.route->cfg.source.store + '\n' + ev.bucket + '\n' + ev.key;
    auto held = co_await locks.lock(lock_key);
    // versions = "all" destinations get the key's whole history, whatever the event; the
    // others the source's current state.
    record_plan current = plan;
    current.route.targets.clear();
    history_job history{ev.bucket, ev.key, d.route->cfg.source.store, {}, delivery.deliveries > 1,
                        plan.metadata_only, ev.version_id};
    // Exclude patterns hold for histories too: a key not to copy gets no versions copied; a
    // key not to remove keeps every version, as at a destination with deletes = "ignore".
    const bool copy_excluded = d.route->exclude_copy.matches(ev.key);
    const bool remove_excluded = d.route->exclude_remove.matches(ev.key);
    for (const auto& t : d.targets) {
      if (!t.all_versions) {
        if (!versions_only) current.route.targets.push_back(t);
      } else if (!copy_excluded) {
        history.targets.push_back(t);
        if (remove_excluded) history.targets.back().keeps_deletes = true;
      }
    }
    if (history.targets.empty() && current.route.targets.empty()) co_return message_outcome::ack_without_work("excluded");
    transfer_slots slots;
    const std::vector<transfer_slots::gate> gates = transfer_gates(history.targets, current.route.targets);
    if (!gates.empty() && slots.try_take(gates)) {
      if (!may_hand_back(cfg.queue.consumer.max_deliver, delivery.deliveries)) {
        co_await slots.take(gates);
      } else if (auto full = co_await slots.take_unless_slow(gates)) {
        fleet::budget_book::count_deferred(*full);
        co_return message_outcome::nak("destination_busy",
                                       "store " + *full + " has no free transfer slot on this worker",
                                       hand_back_delay(delivery.deliveries, rng));
      }
    }
    // Records at destinations known to be slow step aside at once rather than after
    // queue::step_aside_after: they would anyway, and meanwhile hold a slot others can use.
    if (writes_only_to_stores_others_skip(history.targets, current.route.targets))
      msg.allow_stepping_aside(transfer_slots::all_slower_than(gates, queue::step_aside_after));
    std::optional<message_outcome> levelled;
    if (!history.targets.empty()) {
      stage_times times = times_for(delivery);
      auto result = co_await sync_history(io, pool, stores, limits, history);
      levelled = result.failure ? *result.failure : report_history(ev, delivery, result, times);
      if (current.route.targets.empty()) co_return *levelled;
    }
    message_outcome o;
    if (current.what == record_plan::work::remove) o = co_await remove(ev, current.route, delivery);
    else o = co_await copy(ev, current, delivery);
    co_return levelled ? merge_outcomes(*levelled, std::move(o)) : o;
  }

  asio::awaitable<message_outcome> handle(queue::queue_message& msg) {
    auto decoded = event::decode_minio_event(msg.data());
    if (!decoded) {
      const event::decode_error err = decoded.error();
      message_outcome o = message_outcome::term("malformed_event", err.code + ": " + err.reason);
      log::warn("malformed event", {{"seq", msg.delivery().stream_sequence}, {"code", err.code}, {"reason", err.reason}});
      count(o, "unknown", "malformed");
      co_return o;
    }
    auto& records = *decoded;
    if (static_cast<std::int64_t>(records.size()) > cfg.replication.max_records_per_message) {
      message_outcome o = message_outcome::term(
          "too_many_records", std::to_string(records.size()) + " records in one message; replication.max_records_per_message is " +
                                  std::to_string(cfg.replication.max_records_per_message));
      log::warn("event refused", {{"seq", msg.delivery().stream_sequence}, {"code", o.code}, {"reason", o.reason}});
      count(o, "unknown", "malformed");
      co_return o;
    }
    message_outcome overall = message_outcome::ack_without_work("empty");
    // `archie backfill` marks what it publishes, so repairs can be told from live changes.
    const bool backfill = msg.header("Archie-Origin") == "backfill";
    // A version-history repair (backfill): only the versions = "all" destinations.
    const bool versions_only = msg.header("Archie-Scope") == "versions";
    for (const auto& ev : records) {
      message_outcome o;
      try {
        o = co_await handle_record(ev, msg, versions_only);
      } catch (const boost::system::system_error& e) {
        // Cancelled (message timeout, shutdown): the whole message stops here, and the
        // consumer says why; later records must not start.
        if (e.code() == asio::error::operation_aborted) throw;
        o = message_outcome::nak("internal_error", e.what());
      } catch (const std::exception& e) {
        o = message_outcome::nak("internal_error", e.what());
      }
      count(o, event::metric_event_name(ev.event_name), event::to_string(ev.action));
      if (backfill) {
        engine_metrics::get().backfill_events.Add({{"state", queue::to_string(o.what)}}).Increment();
        log::info("backfill event", {{"key", ev.key}, {"bucket", ev.bucket}, {"seq", msg.delivery().stream_sequence},
                                     {"outcome", queue::to_string(o.what)}, {"code", o.code}});
      }
      if (o.what == message_outcome::kind::ack && o.code != "copied" && o.code != "removed")
        log::info("event skipped", {{"key", ev.key}, {"bucket", ev.bucket}, {"event", ev.event_name},
                                    {"seq", msg.delivery().stream_sequence}, {"code", o.code}});
      // A record handed back for a busy destination is routine: at debug, or it would flood.
      if (o.what != message_outcome::kind::ack && o.code == "destination_busy")
        log::debug("event handed back", {{"key", ev.key}, {"seq", msg.delivery().stream_sequence}, {"reason", o.reason}});
      else if (o.what != message_outcome::kind::ack)
        log::warn("event not done", {{"key", ev.key}, {"bucket", ev.bucket}, {"event", ev.event_name},
                                     {"seq", msg.delivery().stream_sequence}, {"deliveries", msg.delivery().deliveries},
                                     {"outcome", queue::to_string(o.what)}, {"code", o.code}, {"reason", o.reason}});
      overall = merge_outcomes(overall, std::move(o));
    }
    co_return overall;
  }
};

replicator::replicator(asio::any_io_executor io, const config::config& cfg, store::store_catalog& stores,
                       fleet::budget_book* budgets)
    : impl_(std::make_unique<impl>(io, cfg, stores, budgets)) {}
replicator::~replicator() = default;

asio::awaitable<message_outcome> replicator::handle(queue::queue_message& msg) { return impl_->handle(msg); }

}  // namespace archie::engine
