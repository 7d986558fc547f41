#include "engine/replicator.hpp"

#include "engine/engine_metrics.hpp"
#include "engine/key_locks.hpp"
#include "engine/record_policy.hpp"
#include "event/minio_event.hpp"
#include "log/logger.hpp"
#include "pipe/fan_out_copy.hpp"
#include "pipe/part_buffer_pool.hpp"
#include "route/router.hpp"
#include "store/store_set.hpp"

#include <boost/asio/error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

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


double seconds_since(steady::time_point t) { return std::chrono::duration<double>(steady::now() - t).count(); }

// Log lines carry stage times to 0.01 ms: finer is noise, and shorter lines are cheaper.
double round_ms(double ms) { return std::round(ms * 100) / 100; }

// How a store failure becomes a message outcome. Retryable and permission problems wait
// (nak with backoff): an operator can fix them and nothing is lost. Permanent refusals end
// the message (term, dead-lettered) because redelivery cannot help.
message_outcome outcome_for(const store_error& e, const char* code_prefix) {
  std::string code = std::string(code_prefix) + "_" + store::to_string(e.kind);
  if (e.kind == error_kind::permanent) return message_outcome::term(code, e.describe());
  return message_outcome::nak(code, e.describe());
}

constexpr int max_convergence_rounds = 5;  // writes per event before giving the key a rest (nak)

// What the source holds for a key: nothing, or one version of an object.
struct source_state {
  bool exists = false;
  store::object_info info;
};

// The metadata a copy carries: the source's, with archie's marker set to this source's ETag.
// A source that is itself a replica (chained A -> B -> C, or restored from an archie copy)
// already has a marker: it is replaced, never sent twice.
store::object_info with_source_etag(const store::object_info& info) {
  store::object_info meta = info;
  std::erase_if(meta.user_metadata, [](const auto& kv) { return kv.first == store::source_etag_metadata; });
  meta.user_metadata.emplace_back(store::source_etag_metadata, meta.etag);
  return meta;
}

// Same version: same existence, and for objects the same ETag, size, modification time and
// metadata. The ETag names the content only: the same bytes put again with other metadata
// (within the same second of Last-Modified) are another version.
bool same_version(const source_state& a, const source_state& b) {
  if (a.exists != b.exists) return false;
  if (!a.exists) return true;
  const auto& x = a.info;
  const auto& y = b.info;
  return x.etag == y.etag && x.size == y.size && x.last_modified == y.last_modified &&
         store::replica_is_current(with_source_etag(x), with_source_etag(y), store::metadata_kept::all);
}

// One destination's part in one event.
struct target_work {
  route::target target;
  store::destination* dest = nullptr;
  std::optional<store_error> failure;  ///< set once; the destination takes no further part
};

// Where one event's time went, for the `replicated` log line (benchmarks read it).
struct stage_times {
  steady::time_point started = steady::now();  ///< this worker starts on the event
  double queued_ms = 0;  ///< JetStream publish -> this worker starts on the event
  double source_ms = 0;  ///< learning the source's state: HEAD, or the GET of a small object
  double write_ms = 0;   ///< copy rounds: reading the parts and writing every destination
  double check_ms = 0;   ///< re-reading the source after writing (convergence)
};

double ms_since(steady::time_point t) { return std::chrono::duration<double, std::milli>(steady::now() - t).count(); }

// What one GET of a small object told: its state, and all of its bytes.
struct fetched_object {
  source_state state;
  pipe::shared_part bytes;
};

struct round_result {
  bool wrote = false;           ///< something was written or removed: the source must be re-read
  bool source_changed = false;  ///< the version we were copying vanished mid-copy (412 / 404)
  std::optional<store_error> source_error;  ///< the source could not be read (retry later)
  std::uint64_t copied_bytes = 0;
};

}  // namespace

struct replicator::impl {
  asio::any_io_executor io;
  config::config cfg;
  store::store_set& stores;
  route::router router;
  pipe::part_buffer_pool pool;
  key_locks locks;

  impl(asio::any_io_executor ex, const config::config& c, store::store_set& s)
      : io(ex),
        cfg(c),
        stores(s),
        router(c.routes),
        pool(ex, static_cast<std::size_t>(c.replication.part_size_mib) << 20,
             static_cast<std::size_t>(c.replication.buffer_budget_mib) << 20),
        locks(ex) {
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

  // HEAD of the source key: absent is a state, not an error.
  asio::awaitable<store::result<source_state>> read_source(store::source& source, const std::string& bucket,
                                                           const std::string& key) {
    auto head = co_await source.head(bucket, key);
    if (head) co_return source_state{true, std::move(head.value())};
    if (head.error().kind == error_kind::not_found) co_return source_state{};
    co_return head.error();
  }

  // A first delivery of an object the event says fits one part: one GET tells what a HEAD
  // would (size, ETag, metadata: the same headers) and brings the bytes, so the source is
  // asked once before writing. Any surprise (grown past the buffer, gone, an error) returns
  // nothing, and the caller takes the usual HEAD path, which knows how to settle each case.
  asio::awaitable<std::optional<fetched_object>> fetch_small(store::source& source, const event::object_event& ev,
                                                             const queue::delivery_info& delivery) {
    const std::size_t part_size = pool.part_size();
    if (delivery.deliveries > 1 || !ev.has_size || ev.size == 0 || ev.size > part_size) co_return std::nullopt;
    // Room for some growth since the event: an overwrite a little larger still fits.
    constexpr std::size_t slack = 64 * 1024;
    const std::size_t room = std::min<std::size_t>(part_size, std::max<std::size_t>(ev.size, slack));
    auto buf = co_await pool.acquire(room);
    store::range_read whole;
    whole.may_end_early = true;
    auto got = co_await source.read(ev.bucket, ev.key, buf->bytes(), whole);
    if (!got || got->size == 0 || got->size > room) co_return std::nullopt;
    co_return fetched_object{source_state{true, std::move(got.value())}, std::move(buf)};
  }

  // One pass writing `state` (an object version) to every destination still in play.
  // `first_part` holds the object's bytes when fetch_small read them.
  asio::awaitable<round_result> copy_round(const event::object_event& ev, const source_state& state,
                                           std::vector<target_work>& work, bool force, bool first_delivery,
                                           store::source& source, const std::string& source_store,
                                           pipe::shared_part first_part) {
    round_result out;
    store::object_info meta = with_source_etag(state.info);
    // On a first delivery the destination rarely has this version yet; for an object of one
    // part, copying it again costs less than asking (a HEAD per destination per event). A
    // redelivery, or a large object, asks first.
    const bool ask_first =
        !first_delivery || meta.size > static_cast<std::uint64_t>(cfg.replication.part_size_mib) * 1024 * 1024;
    std::vector<target_work*> pending;
    for (auto& w : work) {
      if (w.failure) continue;
      if (force || !ask_first) {
        pending.push_back(&w);
        continue;
      }
      // Idempotency: a destination that already holds this version (marker and metadata) is done.
      auto replica = co_await w.dest->replica_info(w.target.bucket, w.target.key);
      if (!replica) {
        w.failure = replica.error();
        continue;
      }
      if (replica.value() && store::replica_is_current(*replica.value(), meta, w.dest->keeps())) continue;
      pending.push_back(&w);
    }
    pipe::copy_request req;
    req.source = &source;
    req.bucket = ev.bucket;
    req.key = ev.key;
    req.meta = meta;
    req.parts_in_flight = static_cast<std::size_t>(cfg.replication.parts_in_flight);
    req.first_part = std::move(first_part);
    std::vector<target_work*> piped;
    for (auto* w : pending) {
      // Same S3 store (endpoint and credentials) as the source: let the server copy.
      if (w->target.store == source_store && meta.size <= source.max_server_side_copy()) {
        auto r = co_await source.copy_within(ev.bucket, ev.key, w->target.bucket, w->target.key, meta);
        if (r) {
          out.wrote = true;
        } else if (r.error().code == "NoSuchBucket") {
          // A missing bucket is not a changed source: the key's version would be gone, not its
          // bucket. The destination bucket is the one to create (a source bucket that vanished
          // fails the next source read the same way).
          w->failure = r.error();
        } else if (r.error().kind == error_kind::precondition_failed || r.error().kind == error_kind::not_found) {
          out.source_changed = true;  // the version we meant to copy is gone
        } else {
          w->failure = r.error();
        }
        continue;
      }
      req.targets.push_back({w->dest, w->target.bucket, w->target.key});
      piped.push_back(w);
    }
    if (req.targets.empty()) req.first_part.reset();  // give the memory back before waiting on anything
    if (!req.targets.empty()) {
      auto report = co_await pipe::fan_out_copy(io, pool, req);
      req.first_part.reset();
      if (report.source_error) {
        auto kind = report.source_error->kind;
        if (kind == error_kind::precondition_failed || kind == error_kind::not_found) out.source_changed = true;
        else out.source_error = *report.source_error;
      }
      for (std::size_t i = 0; i < piped.size(); ++i) {
        if (report.target_errors[i]) piped[i]->failure = *report.target_errors[i];
        else if (!report.source_error) out.wrote = true;
      }
    }
    out.copied_bytes = out.wrote ? meta.size : 0;
    co_return out;
  }

  // One pass removing the key from every destination still in play.
  asio::awaitable<round_result> remove_round(std::vector<target_work>& work) {
    round_result out;
    for (auto& w : work) {
      if (w.failure) continue;
      auto r = co_await w.dest->remove(w.target.bucket, w.target.key);
      if (r) out.wrote = true;
      else w.failure = r.error();
    }
    co_return out;
  }

  // Makes every destination equal to the source for one key, starting from `desired` (what
  // the source held when we looked). After each write, the source is read again: if it still
  // holds what we wrote, the destinations are right at that moment, and any later change has
  // its own event; if not, a concurrent change (or a concurrent worker's stale write) may
  // have been undone by ours, so write the new state and check again. Destinations are
  // independent: one that refuses does not hold back the others.
  asio::awaitable<message_outcome> converge(const event::object_event& ev, const route::decision& d,
                                            const queue::delivery_info& delivery, const source_state& start,
                                            bool force, pipe::shared_part first_part, stage_times times) {
    source_state desired = start;
    const auto& src_cfg = d.route->cfg.source;
    auto& source = stores.source_for(src_cfg.store);
    std::vector<target_work> work;
    for (const auto& t : d.targets) work.push_back({t, &stores.destination_for(t.store), std::nullopt});

    bool wrote_any = false;
    std::uint64_t copied_bytes = 0;
    for (int round = 0;; ++round) {
      round_result r;
      auto write_started = steady::now();
      if (desired.exists)
        r = co_await copy_round(ev, desired, work, force, delivery.deliveries <= 1, source, src_cfg.store,
                                std::exchange(first_part, {}));  // the bytes are of `start` only
      else r = co_await remove_round(work);
      times.write_ms += ms_since(write_started);
      if (r.source_error) co_return outcome_for(*r.source_error, "source");
      wrote_any = wrote_any || r.wrote;
      copied_bytes += r.copied_bytes;
      if (!r.wrote && !r.source_changed) break;  // nothing written by us: nothing to re-check
      auto check_started = steady::now();
      auto now = co_await read_source(source, ev.bucket, ev.key);
      times.check_ms += ms_since(check_started);
      if (!now) co_return outcome_for(now.error(), "source");
      if (!r.source_changed && same_version(now.value(), desired)) break;
      if (round + 1 >= max_convergence_rounds)
        co_return message_outcome::nak("source_churn", "the source kept changing while " + ev.key +
                                                           " was replicated; trying again later");
      engine_metrics::get().convergence_repairs.Increment();
      log::info("source changed while replicating; converging",
                {{"key", ev.key}, {"bucket", ev.bucket}, {"seq", delivery.stream_sequence}, {"round", round + 1},
                 {"had", desired.exists ? desired.info.etag : std::string("absent")},
                 {"now", now->exists ? now->info.etag : std::string("absent")}});
      desired = std::move(now.value());
      force = true;  // a repair must not trust ETags recorded by writes it is correcting
    }

    // Destinations that could not take the change decide the outcome; the rest are done and
    // a redelivery finds them so (recorded ETag, or absent).
    std::string reasons;
    bool retry = false;
    const store_error* first = nullptr;
    for (const auto& w : work) {
      if (!w.failure) continue;
      if (!first) first = &*w.failure;
      if (w.failure->kind != error_kind::permanent) retry = true;
      reasons += (reasons.empty() ? "" : "; ") + w.failure->describe();
    }
    if (first) {
      std::string code = std::string("destination_") + store::to_string(first->kind);
      if (retry) co_return message_outcome::nak(code == "destination_permanent" ? "destination_retryable" : code, reasons);
      co_return message_outcome::term(code, reasons);
    }

    auto& m = engine_metrics::get();
    double secs = seconds_since(times.started);  // the whole handling: source, writes and checks
    double queued = std::chrono::duration<double>(std::chrono::system_clock::now() - delivery.published).count();
    if (!desired.exists) {
      m.delete_duration.Observe(secs);
      m.delete_delivered.Increment();
      m.delete_queue_duration.Observe(queued);
      log::info("removed", {{"key", ev.key}, {"bucket", ev.bucket}, {"seq", delivery.stream_sequence},
                            {"deliveries", delivery.deliveries}, {"destinations", d.targets.size()}});
      co_return message_outcome::ack("removed");
    }
    if (!wrote_any) {
      log::info("already replicated", {{"key", ev.key}, {"bucket", ev.bucket}, {"etag", desired.info.etag}});
      co_return message_outcome::ack_without_work("already_replicated");
    }
    m.transfer_duration.Observe(secs);
    m.transfer_size.Observe(static_cast<double>(desired.info.size));
    if (secs > 0) m.transfer_rate.Observe(static_cast<double>(desired.info.size) / secs);
    m.transfer_delivered.Increment();
    m.transfer_queue_duration.Observe(queued);
    std::string dests;
    for (const auto& t : d.targets) dests += (dests.empty() ? "" : ",") + t.store + ":" + t.bucket + "/" + t.key;
    log::info("replicated", {{"key", ev.key},
                             {"bucket", ev.bucket},
                             {"event", ev.event_name},
                             {"seq", delivery.stream_sequence},
                             {"deliveries", delivery.deliveries},
                             {"etag", desired.info.etag},
                             {"bytes", desired.info.size},
                             {"bytes_copied", copied_bytes},
                             {"duration_ms", round_ms(secs * 1000)},
                             {"rate_mb_s", secs > 0 ? static_cast<double>(desired.info.size) / secs / 1e6 : 0.0},
                             {"queued_ms", round_ms(times.queued_ms)},
                             {"source_ms", round_ms(times.source_ms)},
                             {"write_ms", round_ms(times.write_ms)},
                             {"check_ms", round_ms(times.check_ms)},
                             {"destinations", dests}});
    co_return message_outcome::ack("copied");
  }

  asio::awaitable<message_outcome> copy(const event::object_event& ev, const route::decision& d,
                                        const queue::delivery_info& delivery, bool force) {
    auto& source = stores.source_for(d.route->cfg.source.store);
    stage_times times;
    times.queued_ms =
        std::chrono::duration<double, std::milli>(std::chrono::system_clock::now() - delivery.published).count();
    auto source_started = steady::now();
    source_state seen;
    pipe::shared_part bytes;
    if (auto small = co_await fetch_small(source, ev, delivery)) {
      seen = std::move(small->state);
      bytes = std::move(small->bytes);
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
    co_return co_await converge(ev, d, delivery, seen, force, std::move(bytes), times);
  }

  asio::awaitable<message_outcome> remove(const event::object_event& ev, const route::decision& d,
                                          const queue::delivery_info& delivery) {
    auto& source = stores.source_for(d.route->cfg.source.store);
    // The payload has no ordering guarantee: if the key exists again, this delete is stale and
    // the newer object's own event brings it.
    auto head = co_await read_source(source, ev.bucket, ev.key);
    if (!head) co_return outcome_for(head.error(), "source");
    if (head->exists) {
      engine_metrics::get().stale_deletes.Add({}).Increment();
      log::info("stale delete not propagated: the key exists again at the source",
                {{"key", ev.key}, {"bucket", ev.bucket}, {"seq", delivery.stream_sequence}});
      co_return message_outcome::ack_without_work("stale_delete");
    }
    if (cfg.replication.delete_not_found == config::delete_not_found_policy::retry) {
      for (const auto& t : d.targets) {
        auto recorded = co_await stores.destination_for(t.store).recorded_source_etag(t.bucket, t.key);
        if (recorded && recorded.value().empty())
          co_return retry_then_term(delivery, "destination_not_found", t.store + ":" + t.bucket + "/" + t.key);
      }
    }
    source_state absent;
    co_return co_await converge(ev, d, delivery, absent, false, {}, {});
  }

  // Waiting for a destination copy to appear (delete_not_found = "retry"): the original
  // archie's behaviour, which ends in a dead letter.
  message_outcome retry_then_term(const queue::delivery_info& d, std::string code, std::string reason) {
    if (!retries_exhausted(d)) return message_outcome::nak(std::move(code), std::move(reason));
    return message_outcome::term(code, reason + " (after " + std::to_string(d.deliveries) + " deliveries)");
  }

  asio::awaitable<message_outcome> handle_record(const event::object_event& ev, const queue::delivery_info& delivery) {
    record_plan plan = plan_record(ev, cfg.replication, router);
    if (plan.settled) co_return *plan.settled;
    const route::decision& d = plan.route;
    // One event per key at a time in this process (see key_locks.hpp).
    std::string lock_key = d.route->cfg.source.store + '\n' + ev.bucket + '\n' + ev.key;
    auto held = co_await locks.lock(lock_key);
    if (plan.what == record_plan::work::remove) co_return co_await remove(ev, d, delivery);
    co_return co_await copy(ev, d, delivery, plan.force);
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
    for (const auto& ev : records) {
      message_outcome o;
      try {
        o = co_await handle_record(ev, msg.delivery());
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
      if (o.what != message_outcome::kind::ack)
        log::warn("event not done", {{"key", ev.key}, {"bucket", ev.bucket}, {"event", ev.event_name},
                                     {"seq", msg.delivery().stream_sequence}, {"deliveries", msg.delivery().deliveries},
                                     {"outcome", queue::to_string(o.what)}, {"code", o.code}, {"reason", o.reason}});
      overall = merge_outcomes(overall, std::move(o));
    }
    co_return overall;
  }
};

replicator::replicator(asio::any_io_executor io, const config::config& cfg, store::store_set& stores)
    : impl_(std::make_unique<impl>(io, cfg, stores)) {}
replicator::~replicator() = default;

asio::awaitable<message_outcome> replicator::handle(queue::queue_message& msg) { return impl_->handle(msg); }

}  // namespace archie::engine
