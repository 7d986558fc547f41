#include "engine/convergence.hpp"

#include "engine/elapsed.hpp"
#include "engine/engine_metrics.hpp"
#include "engine/record_policy.hpp"
#include "log/logger.hpp"
#include "pipe/fan_out_copy.hpp"

#include <chrono>
#include <utility>

namespace archie::engine {
namespace asio = boost::asio;
using store::error_kind;
using store::store_error;
using steady = std::chrono::steady_clock;

namespace {


// One destination's part in the event.
struct target_work {
  route::target target;
  store::destination* dest = nullptr;
  std::optional<store_error> failure;  ///< set once; the destination takes no further part
};

struct round_result {
  bool wrote = false;           ///< something was written or removed: the source must be re-read
  bool source_changed = false;  ///< the version being copied vanished mid-copy (412 / 404)
  std::optional<store_error> source_error;  ///< the source could not be read (retry later)
  std::uint64_t copied_bytes = 0;
  int tag_writes = 0;
};

// A server's answer that means "the version you asked for is not there any more".
bool version_gone(const store_error& e) {
  return e.kind == error_kind::precondition_failed || e.kind == error_kind::not_found;
}

// One pass writing `state` (an object version) to every destination still in play.
asio::awaitable<round_result> copy_round(asio::any_io_executor io, pipe::part_buffer_pool& pool,
                                         const convergence_limits& limits, convergence_job& job,
                                         store::source& source, const source_state& state,
                                         std::vector<target_work>& work, bool force, bool ask_first) {
  round_result out;
  store::object_info meta = with_source_etag(state.info);
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
    const store::object_info wanted = store::kept_by(meta, w.target.write);
    if (replica.value() && store::replica_is_current(*replica.value(), wanted, w.dest->keeps())) continue;
    if (replica.value() && !store::replica_holds_version(*replica.value(), wanted, w.dest->keeps()) &&
        store::replica_has_bytes_of(*replica.value(), wanted)) {
      // The same bytes with other content headers or user metadata: rewrite only those where
      // the destination can (S3: CopyObject onto itself), then tags and lock if they differ.
      auto replaced = co_await w.dest->replace_metadata(w.target.bucket, w.target.key, *replica.value(), wanted,
                                                        w.target.write);
      if (replaced && replaced.value()) {
        out.wrote = true;
        ++out.tag_writes;
        // Servers differ in what such a copy keeps of the tags: read what it made, then
        // write the tags and lock where they differ, on that new version.
        auto made = co_await w.dest->replica_info(w.target.bucket, w.target.key);
        if (!made) {
          w.failure = made.error();
        } else if (made.value()) {
          auto set = co_await write_metadata(*w.dest, w.target, *made.value(), wanted);
          if (!set) w.failure = set.error();
        }
        continue;
      }
      if (!replaced && !version_gone(replaced.error())) {
        w.failure = replaced.error();
        continue;
      }
      // Not possible here, or the replica changed meanwhile: write the whole version.
    }
    if (replica.value() && store::replica_holds_version(*replica.value(), wanted, w.dest->keeps())) {
      // Only tags or object lock differ (a metadata change at the source): set them, copy nothing.
      auto set = co_await write_metadata(*w.dest, w.target, *replica.value(), wanted);
      if (set) {
        out.wrote = true;
        ++out.tag_writes;
      } else if (version_gone(set.error())) {
        pending.push_back(&w);  // the replica changed meanwhile: write the whole version
      } else {
        w.failure = set.error();
      }
      continue;
    }
    pending.push_back(&w);
  }
  pipe::copy_request req;
  req.source = &source;
  req.bucket = job.bucket;
  req.key = job.key;
  req.meta = meta;
  req.parts_in_flight = limits.parts_in_flight;
  req.ahead = std::exchange(job.ahead, {});
  req.earlier_attempt_possible = job.earlier_attempt_possible;
  std::vector<target_work*> piped;
  bool copied = false;  // bytes written somewhere (tag writes above copy none)
  for (auto* w : pending) {
    // Same S3 store (endpoint and credentials) as the source: let the server copy.
    if (w->target.store == job.source_store && meta.size <= source.max_server_side_copy()) {
      auto r = co_await source.copy_within(job.bucket, job.key, w->target.bucket, w->target.key, meta, w->target.write);
      const std::string tagging = store::kept_by(meta, w->target.write).tagging;
      if (r && !tagging.empty()) {
        // A server-side copy with new metadata does not bring the tags along everywhere.
        const store::object_info current;  // the version just written is the current one
        auto tagged = co_await w->dest->set_tagging(w->target.bucket, w->target.key, current, tagging);
        if (!tagged) w->failure = tagged.error();
      }
      if (r) {
        out.wrote = copied = true;
      } else if (r.error().code == "NoSuchBucket") {
        // A missing bucket is not a changed source: the key's version would be gone, not its
        // bucket. The destination bucket is the one to create (a source bucket that vanished
        // fails the next source read the same way).
        w->failure = r.error();
      } else if (version_gone(r.error())) {
        out.source_changed = true;
      } else {
        w->failure = r.error();
      }
      continue;
    }
    req.targets.push_back({w->dest, w->target.bucket, w->target.key, w->target.write});
    piped.push_back(w);
  }
  if (req.targets.empty()) req.ahead.reset();  // give the memory back before waiting on anything
  if (!req.targets.empty()) {
    auto report = co_await pipe::fan_out_copy(io, pool, req);
    req.ahead.reset();
    if (report.source_error) {
      if (version_gone(*report.source_error)) out.source_changed = true;
      else out.source_error = *report.source_error;
    }
    for (std::size_t i = 0; i < piped.size(); ++i) {
      if (report.target_errors[i]) piped[i]->failure = *report.target_errors[i];
      else if (!report.source_error) out.wrote = copied = true;
    }
  }
  out.copied_bytes = copied ? meta.size : 0;
  co_return out;
}

// One pass removing the key from every destination still in play, except those that keep
// what the source deletes (deletes = "ignore").
asio::awaitable<round_result> remove_round(std::vector<target_work>& work) {
  round_result out;
  for (auto& w : work) {
    if (w.failure || w.target.keeps_deletes) continue;
    auto r = co_await w.dest->remove(w.target.bucket, w.target.key);
    if (r) out.wrote = true;
    else w.failure = r.error();
  }
  co_return out;
}

}  // namespace

// A replica of the right version whose tags or object lock differ: only those are written.
asio::awaitable<store::result<store::done>> write_metadata(store::destination& dest, const route::target& target,
                                                           const store::object_info& replica,
                                                           const store::object_info& wanted) {
  if (replica.tagging != wanted.tagging) {
    auto tagged = co_await dest.set_tagging(target.bucket, target.key, replica, wanted.tagging);
    if (!tagged) co_return tagged.error();
  }
  if (!store::same_object_lock(replica, wanted)) {
    auto locked = co_await dest.set_object_lock(target.bucket, target.key, replica, wanted);
    if (!locked) co_return locked.error();
  }
  co_return store::done{};
}

store::object_info with_source_etag(const store::object_info& info) {
  store::object_info meta = info;
  std::erase_if(meta.user_metadata, [](const auto& kv) { return kv.first == store::source_etag_metadata; });
  meta.user_metadata.emplace_back(store::source_etag_metadata, meta.etag);
  return meta;
}

// The ETag names the content only: the same bytes put again with other metadata (within the
// same second of Last-Modified) are another version.
bool same_version(const source_state& a, const source_state& b) {
  if (a.exists != b.exists) return false;
  if (!a.exists) return true;
  const auto& x = a.info;
  const auto& y = b.info;
  if (x.etag != y.etag || x.size != y.size || x.last_modified != y.last_modified) return false;
  // A read that could not tell the tags (no count, or not readable) does not compare them:
  auto mx = with_source_etag(x), my = with_source_etag(y);
  // x is the fresh read: some servers leave the count out of HEAD answers that GET has.
  if (x.tag_count < 0) mx.tagging = my.tagging;
  return store::replica_is_current(mx, my, store::metadata_kept::all);
}

asio::awaitable<std::optional<store_error>> read_source_tags(store::source& source, const std::string& bucket,
                                                             const std::string& key, store::object_info& info) {
  if (info.tag_count <= 0) co_return std::nullopt;
  auto tags = co_await source.tagging(bucket, key, info.version_id);
  if (!tags) {
    // Not allowed to read them (s3:GetObjectTagging), or a server without tagging: the copy
    // goes ahead without tags rather than never (tag_count -1: not compared).
    if (tags.error().kind == error_kind::permission || tags.error().kind == error_kind::permanent) {
      log::warn("source tags unreadable; copying without them",
                {{"key", key}, {"bucket", bucket}, {"error", tags.error().describe()}});
      info.tag_count = -1;
      co_return std::nullopt;
    }
    co_return tags.error();
  }
  info.tagging = std::move(tags.value());
  co_return std::nullopt;
}

asio::awaitable<store::result<source_state>> read_source(store::source& source, const std::string& bucket,
                                                         const std::string& key) {
  auto head = co_await source.head(bucket, key);
  if (!head) {
    if (head.error().kind == error_kind::not_found) co_return source_state{};
    co_return head.error();
  }
  source_state state{true, std::move(head.value())};
  // A version deleted between the HEAD and this read says not_found: the key is absent now.
  auto tags_failed = co_await read_source_tags(source, bucket, key, state.info);
  if (tags_failed) {
    if (tags_failed->kind == error_kind::not_found) co_return source_state{};
    co_return *tags_failed;
  }
  co_return state;
}

asio::awaitable<convergence_result> converge(asio::any_io_executor io, pipe::part_buffer_pool& pool,
                                             store::store_catalog& stores, const convergence_limits& limits,
                                             convergence_job& job) {
  convergence_result out;
  out.final_state = job.start;
  source_state& desired = out.final_state;
  auto& source = stores.source_for(job.source_store);
  std::vector<target_work> work;
  for (const auto& t : job.targets) work.push_back({t, &stores.destination_for(t.store), std::nullopt});

  bool force = job.force;
  for (;;) {
    ++out.rounds;
    round_result r;
    auto write_started = steady::now();
    if (desired.exists) {
      // A first delivery rarely finds this version at the destination; for an object of one
      // part, copying it again costs less than asking. A redelivery or a large object asks
      // first (a repair round is forced anyway).
      const bool ask_first = !job.likely_missing || desired.info.size > limits.part_size;
      r = co_await copy_round(io, pool, limits, job, source, desired, work, force, ask_first);
    } else {
      r = co_await remove_round(work);
    }
    job.ahead.reset();  // the bytes are of `start` only
    out.write_ms += ms_since(write_started);
    if (r.source_error) {
      out.failure = outcome_for(*r.source_error, "source");
      co_return out;
    }
    out.wrote = out.wrote || r.wrote;
    out.copied_bytes += r.copied_bytes;
    out.tag_writes += r.tag_writes;
    if (!r.wrote && !r.source_changed) break;  // nothing written by us: nothing to re-check
    auto check_started = steady::now();
    auto now = co_await read_source(source, job.bucket, job.key);
    out.check_ms += ms_since(check_started);
    if (!now) {
      out.failure = outcome_for(now.error(), "source");
      co_return out;
    }
    if (!r.source_changed && same_version(now.value(), desired)) break;
    if (out.rounds >= limits.max_rounds) {
      out.failure = queue::message_outcome::nak(
          "source_churn", "the source kept changing while " + job.key + " was replicated; trying again later");
      co_return out;
    }
    engine_metrics::get().convergence_repairs.Increment();
    log::info("source changed while replicating; converging",
              {{"key", job.key}, {"bucket", job.bucket}, {"seq", job.stream_sequence}, {"round", out.rounds},
               {"had", desired.exists ? desired.info.etag : std::string("absent")},
               {"now", now->exists ? now->info.etag : std::string("absent")}});
    desired = std::move(now.value());
    force = true;  // a repair must not trust ETags recorded by writes it is correcting
  }

  // Destinations that could not take the change decide the outcome; the rest are done and
  // a redelivery finds them so (recorded ETag, or absent).
  std::vector<std::optional<store_error>> failures;
  for (auto& w : work) failures.push_back(std::move(w.failure));
  out.failure = destination_failures_outcome(failures);
  co_return out;
}

}  // namespace archie::engine
