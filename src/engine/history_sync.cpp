#include "engine/history_sync.hpp"

#include "engine/record_policy.hpp"
#include "log/logger.hpp"
#include "pipe/fan_out_copy.hpp"

#include <algorithm>
#include <map>
#include <optional>
#include <set>

namespace archie::engine {
namespace asio = boost::asio;
using store::error_kind;
using store::store_error;

namespace {

// One entry of a destination's history while a plan is made.
struct replica_entry {
  bool delete_marker = false;
  std::string source_version_id;  ///< object versions archie wrote
  std::string version_id;         ///< the destination's own ID (empty: written by this plan)
  bool copy = false;              ///< a copy of a version the source still has
  std::size_t position = 0;       ///< copy: that version's place among the source's versions
};

// Indices (into `entries`) of a longest run of `items` whose positions strictly increase:
// the copies already in the source's order. Patience sorting, O(n log n): a key may have
// many thousands of versions. The same input gives the same run, so two workers planning
// from the same listing remove the same copies.
std::vector<std::size_t> longest_ordered_run(const std::vector<replica_entry>& entries,
                                             const std::vector<std::size_t>& items) {
  const std::size_t n = items.size();
  std::vector<std::size_t> tails;  // tails[k]: index into items of the smallest end of a run of k+1
  std::vector<std::size_t> previous(n, n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t pos = entries[items[i]].position;
    auto at = std::lower_bound(tails.begin(), tails.end(), pos,
                               [&](std::size_t t, std::size_t p) { return entries[items[t]].position < p; });
    if (at != tails.begin()) previous[i] = *(at - 1);
    if (at == tails.end()) tails.push_back(i);
    else *at = i;
  }
  std::vector<std::size_t> run;
  for (std::size_t i = tails.empty() ? n : tails.back(); i < n; i = previous[i]) run.push_back(items[i]);
  std::reverse(run.begin(), run.end());
  return run;
}

}  // namespace

namespace {

std::vector<history_step> plan_writes(const store::version_history& source, const store::version_history& replica,
                                      bool propagate_deletes, bool markers_kept,
                                      std::vector<history_step>& removals) {
  using kind = history_step::kind;
  std::vector<history_step> steps;
  std::vector<const store::object_version*> src;  // oldest first
  for (auto it = source.rbegin(); it != source.rend(); ++it) src.push_back(&*it);
  std::map<std::string, std::size_t> position;  // of each object version among the source's
  for (const auto* s : src)
    if (!s->delete_marker) position.emplace(s->version_id, position.size());
  const bool source_current_is_object = !src.empty() && !src.back()->delete_marker;
  const std::string current = source_current_is_object ? src.back()->version_id : std::string();

  std::vector<replica_entry> dst;  // oldest first, as the plan leaves it
  auto remove_entry = [&](std::size_t i) {
    removals.push_back({kind::remove_version, dst[i].version_id});
    const bool live_removed = !markers_kept && i + 1 == dst.size() && !dst[i].delete_marker;
    dst.erase(dst.begin() + static_cast<std::ptrdiff_t>(i));
    // Without delete markers (GCS), the live version deleted for good leaves nothing live,
    // where S3 would make the version below it current: that is a delete marker here.
    if (live_removed) dst.push_back({true, {}, {}});
  };
  for (auto it = replica.rbegin(); it != replica.rend(); ++it) {
    replica_entry e{it->delete_marker, it->source_version_id, it->version_id};
    if (!e.delete_marker && !e.source_version_id.empty()) {
      auto at = position.find(e.source_version_id);
      if (at != position.end()) {
        e.copy = true;
        e.position = at->second;
      } else if (propagate_deletes) {
        // A copy of a version the source deleted for good goes too. (Kept otherwise, and
        // left where it is, like versions archie did not write.)
        removals.push_back({kind::remove_version, e.version_id});
        if (!markers_kept && &*it == &replica.front()) dst.push_back({true, {}, {}});  // see remove_entry
        continue;
      }
    }
    dst.push_back(std::move(e));
  }
  auto top_is_marker = [&] { return !dst.empty() && dst.back().delete_marker; };
  auto top_is_current = [&] {
    return source_current_is_object && !dst.empty() && dst.back().copy && dst.back().source_version_id == current;
  };

  // Copies out of the source's order or twice (two workers racing on one key) are removed:
  // the current version's copy on top stays, and of the others the longest run in order.
  const bool current_on_top = top_is_current();
  std::vector<std::size_t> copies;
  std::set<std::size_t> extra;
  for (std::size_t i = 0; i + (current_on_top ? 1 : 0) < dst.size(); ++i) {
    if (!dst[i].copy) continue;
    if (current_on_top && dst[i].source_version_id == current) extra.insert(i);
    else copies.push_back(i);
  }
  auto run = longest_ordered_run(dst, copies);
  const std::set<std::size_t> in_order(run.begin(), run.end());
  for (auto i : copies)
    if (!in_order.count(i)) extra.insert(i);
  for (auto it = extra.rbegin(); it != extra.rend(); ++it) remove_entry(*it);

  std::set<std::string> present;
  for (const auto& d : dst)
    if (d.copy) present.insert(d.source_version_id);
  // A missing version belongs below copies the destination already has (a race, or a version
  // lost there): those are removed and written again after it, so the order holds.
  std::optional<std::size_t> first_missing;
  for (const auto* s : src)
    if (!s->delete_marker && !present.count(s->version_id)) {
      first_missing = position.at(s->version_id);
      break;
    }
  if (first_missing) {
    std::size_t from = dst.size();
    for (std::size_t i = 0; i < dst.size(); ++i)
      if (dst[i].copy && dst[i].position > *first_missing) {
        from = i;
        break;
      }
    for (std::size_t i = dst.size(); i > from; --i) {
      auto& e = dst[i - 1];
      const bool ours = e.copy || (e.delete_marker && propagate_deletes && !e.version_id.empty());
      if (!ours) continue;
      if (e.copy) present.erase(e.source_version_id);
      remove_entry(i - 1);
    }
  }

  // Fill in what is missing, oldest first, with the delete marker that preceded each.
  for (std::size_t i = 0; i < src.size(); ++i) {
    const auto& s = *src[i];
    if (s.delete_marker || present.count(s.version_id)) continue;
    if (propagate_deletes && i > 0 && src[i - 1]->delete_marker && !dst.empty() && !top_is_marker()) {
      steps.push_back({kind::delete_marker, {}});
      dst.push_back({true, {}, {}});
    }
    steps.push_back({kind::copy, s.version_id});
    dst.push_back({false, s.version_id, {}, true, position.at(s.version_id)});
    present.insert(s.version_id);
  }

  // The current version must be the source's.
  if (!source_current_is_object) {
    if (propagate_deletes && !dst.empty() && !top_is_marker()) steps.push_back({kind::delete_marker, {}});
    return steps;
  }
  if (top_is_current()) return steps;
  if (propagate_deletes && top_is_marker()) {
    // The source's delete marker was deleted: remove ours where the version under it is the
    // source's current one, rather than copying it again.
    std::size_t below = dst.size();
    while (below > 0 && dst[below - 1].delete_marker) --below;
    const bool current_below = below > 0 && dst[below - 1].copy && dst[below - 1].source_version_id == current;
    const bool all_known = std::all_of(dst.begin() + static_cast<std::ptrdiff_t>(below), dst.end(),
                                       [](const replica_entry& e) { return !e.version_id.empty(); });
    if (current_below && all_known) {
      while (dst.size() > below) remove_entry(dst.size() - 1);
      return steps;
    }
  }
  // Above the current version's copy lie versions archie may not delete (deletes = "ignore",
  // or not written by archie): copy it again on top, and drop the copy below.
  for (std::size_t i = dst.size(); i > 0; --i)
    if (dst[i - 1].copy && dst[i - 1].source_version_id == current && !dst[i - 1].version_id.empty())
      remove_entry(i - 1);
  steps.push_back({kind::copy, current});
  return steps;
}

}  // namespace

store::version_history without_inner_markers(const store::version_history& source) {
  store::version_history out;
  for (const auto& v : source)
    if (!v.delete_marker || &v == &source.front()) out.push_back(v);
  return out;
}

std::vector<history_step> plan_history(const store::version_history& source, const store::version_history& replica,
                                       bool propagate_deletes, bool markers_kept) {
  // Removals come last: a copy rewritten elsewhere in the history goes only once its new
  // copy is written, so a failure between the two (the version deleted at the source
  // meanwhile, an outage) never leaves the destination without it.
  std::vector<history_step> removals;
  auto steps = markers_kept ? plan_writes(source, replica, propagate_deletes, true, removals)
                            : plan_writes(without_inner_markers(source), replica, propagate_deletes, false, removals);
  steps.insert(steps.end(), removals.begin(), removals.end());
  return steps;
}

namespace {

// Outside the coroutine: GCC 12 rule 3 (async/gcc12_coroutines.hpp).
store_error source_not_versioned(const std::string& store, const std::string& bucket, const std::string& key,
                                 const std::string& status) {
  return store_error{error_kind::permanent, store, "GetBucketVersioning", bucket, key, 0, "VersioningNotEnabled",
                     "versions = \"all\" needs versioning enabled on the source bucket (its status: " +
                         (status.empty() ? std::string("never enabled") : status) + ")",
                     ""};
}

// What a copy of one source version carries: the source's metadata, its ETag marker and the
// version marker.
store::object_info version_copy_meta(const store::object_info& info, const std::string& version_id) {
  store::object_info meta = with_source_etag(info);
  std::erase_if(meta.user_metadata, [](const auto& kv) { return kv.first == store::source_version_metadata; });
  meta.user_metadata.emplace_back(store::source_version_metadata, version_id);
  return meta;
}

// A metadata event: the copy of the version it names gets the source's tags and object lock
// where they differ. Nothing when the version or its copy is gone (its own event says so).
asio::awaitable<std::optional<store_error>> level_metadata(const history_job& job, store::source& source,
                                                           store::destination& dest, const route::target& target,
                                                           const store::version_history& source_history,
                                                           const store::version_history& replica,
                                                           history_result& out) {
  std::string version = job.changed_version;
  if (version.empty()) {
    if (source_history.empty() || source_history.front().delete_marker) co_return std::nullopt;
    version = source_history.front().version_id;  // newest first: the current one
  }
  auto copy = std::find_if(replica.begin(), replica.end(),
                           [&](const store::object_version& v) { return v.source_version_id == version; });
  if (copy == replica.end()) co_return std::nullopt;
  auto info = co_await source.head_version(job.bucket, job.key, version);
  if (info) {
    auto tags_failed = co_await read_source_tags(source, job.bucket, job.key, info.value());
    if (tags_failed) info = *tags_failed;
  }
  if (!info) {
    if (info.error().kind == error_kind::not_found) co_return std::nullopt;
    co_return info.error();
  }
  auto held = co_await dest.replica_version_info(target.bucket, target.key, copy->version_id);
  if (!held) co_return held.error();
  if (!held.value()) co_return std::nullopt;
  const store::object_info wanted = store::kept_by(version_copy_meta(info.value(), version), target.write);
  if (store::replica_is_current(*held.value(), wanted, dest.keeps())) co_return std::nullopt;
  auto written = co_await write_metadata(dest, target, *held.value(), wanted);
  if (!written) co_return written.error();
  ++out.tag_writes;
  co_return std::nullopt;
}

// The steps of one destination, in order; the first failure stops them (the rest would be
// out of order). A source version gone since the listing is reported as a change.
struct target_outcome {
  std::optional<store_error> failure;
  bool source_changed = false;
};

asio::awaitable<target_outcome> apply_steps(asio::any_io_executor io, pipe::part_buffer_pool& pool,
                                            const convergence_limits& limits, const history_job& job,
                                            store::source& source, store::destination& dest,
                                            const route::target& target, const std::vector<history_step>& steps,
                                            history_result& out) {
  target_outcome result;
  for (const auto& step : steps) {
    switch (step.what) {
      case history_step::kind::remove_version: {
        auto r = co_await dest.remove_version(target.bucket, target.key, step.version_id);
        if (r) {
          ++out.versions_removed;
        } else if (r.error().kind == error_kind::permission) {
          // A version under object lock (WORM), or no s3:DeleteObjectVersion: retrying
          // cannot help, and keeping an extra version loses nothing. Kept, and said so.
          log::warn("version kept: the destination refused to delete it",
                    {{"store", target.store}, {"bucket", target.bucket}, {"key", target.key},
                     {"version", step.version_id}, {"error", r.error().describe()}});
        } else {
          result.failure = r.error();
        }
        break;
      }
      case history_step::kind::delete_marker: {
        auto r = co_await dest.remove(target.bucket, target.key);  // a versioned bucket keeps the data
        if (!r) result.failure = r.error();
        else ++out.markers_written;
        break;
      }
      case history_step::kind::copy: {
        auto head = co_await source.head_version(job.bucket, job.key, step.version_id);
        if (head) {
          auto tags_failed = co_await read_source_tags(source, job.bucket, job.key, head.value());
          if (tags_failed) head = *tags_failed;
        }
        if (!head) {
          if (head.error().kind == error_kind::not_found) result.source_changed = true;
          else result.failure = head.error();
          break;
        }
        pipe::copy_request req;
        req.source = &source;
        req.bucket = job.bucket;
        req.key = job.key;
        req.meta = version_copy_meta(head.value(), step.version_id);  // version_id set: every read names it
        req.parts_in_flight = limits.parts_in_flight;
        req.earlier_attempt_possible = job.earlier_attempt_possible;
        req.targets.push_back({&dest, target.bucket, target.key, target.write});
        auto report = co_await pipe::fan_out_copy(io, pool, req);
        if (report.source_error) {
          if (report.source_error->kind == error_kind::not_found ||
              report.source_error->kind == error_kind::precondition_failed)
            result.source_changed = true;
          else
            result.failure = *report.source_error;
        } else if (report.target_errors[0]) {
          result.failure = *report.target_errors[0];
        } else {
          ++out.versions_copied;
          out.copied_bytes += head->size;
        }
        break;
      }
    }
    if (result.failure || result.source_changed) break;
  }
  co_return result;
}

}  // namespace

asio::awaitable<history_result> sync_history(asio::any_io_executor io, pipe::part_buffer_pool& pool,
                                             store::store_catalog& stores, const convergence_limits& limits,
                                             const history_job& job) {
  history_result out;
  auto& source = stores.source_for(job.source_store);
  // On a source without versioning (or with it suspended) an overwrite keeps the ID "null":
  // the history would look level while the bytes changed. Refused, by name.
  auto versioning = co_await source.versioning(job.bucket);
  if (!versioning) {
    out.failure = outcome_for(versioning.error(), "source");
    co_return out;
  }
  if (versioning.value() != "Enabled") {
    out.failure = outcome_for(source_not_versioned(source.name(), job.bucket, job.key, versioning.value()), "source");
    co_return out;
  }
  std::vector<std::optional<store_error>> failures(job.targets.size());
  std::vector<store::version_history> level(job.targets.size());  // each one's last listing
  store::version_history source_history;
  // Rounds until one finds every destination level with the source: the source may change
  // while it is copied, and another worker may write the same key at the same time (its
  // duplicates are removed by the next plan). The round that writes nothing is the proof.
  for (int round = 1;; ++round) {
    auto listed = co_await source.versions(job.bucket, job.key);
    if (!listed) {
      out.failure = outcome_for(listed.error(), "source");
      co_return out;
    }
    bool changed = false;
    const int writes_before = out.writes();
    for (std::size_t i = 0; i < job.targets.size(); ++i) {
      if (failures[i]) continue;
      const auto& target = job.targets[i];
      auto& dest = stores.destination_for(target.store);
      auto replica = co_await dest.history(target.bucket, target.key);
      if (!replica) {
        failures[i] = replica.error();
        continue;
      }
      auto steps = plan_history(listed.value(), replica.value(), !target.keeps_deletes, dest.holds_delete_markers());
      level[i] = std::move(replica.value());
      auto applied = co_await apply_steps(io, pool, limits, job, source, dest, target, steps, out);
      if (applied.failure) failures[i] = std::move(applied.failure);
      changed = changed || applied.source_changed;
    }
    source_history = std::move(listed.value());
    if (!changed && out.writes() == writes_before) break;
    if (round >= limits.max_rounds) {
      out.failure = queue::message_outcome::nak(
          "source_churn", "the version history of " + job.key + " kept changing while it was replicated");
      co_return out;
    }
  }
  if (job.metadata_changed) {
    for (std::size_t i = 0; i < job.targets.size(); ++i) {
      if (failures[i]) continue;
      auto& dest = stores.destination_for(job.targets[i].store);
      failures[i] = co_await level_metadata(job, source, dest, job.targets[i], source_history, level[i], out);
    }
  }
  out.failure = destination_failures_outcome(failures);
  co_return out;
}

}  // namespace archie::engine
