#include "engine/history_sync.hpp"

#include "engine/record_policy.hpp"
#include "log/logger.hpp"
#include "pipe/fan_out_copy.hpp"

#include <algorithm>
#include <set>

namespace archie::engine {
namespace asio = boost::asio;
using store::error_kind;
using store::store_error;

namespace {

// One entry of a destination's history while a plan is made: what it is, and what it copies.
struct replica_entry {
  bool delete_marker = false;
  std::string source_version_id;  ///< object versions archie wrote
  std::string version_id;         ///< the destination's own ID (empty: written by this plan)
};

}  // namespace

std::vector<history_step> plan_history(const store::version_history& source, const store::version_history& replica,
                                       bool propagate_deletes) {
  using kind = history_step::kind;
  std::vector<history_step> steps;
  std::vector<const store::object_version*> src;  // oldest first
  for (auto it = source.rbegin(); it != source.rend(); ++it) src.push_back(&*it);
  std::set<std::string> source_objects;
  for (const auto* s : src)
    if (!s->delete_marker) source_objects.insert(s->version_id);

  std::vector<replica_entry> dst;  // oldest first, as the plan leaves it
  for (auto it = replica.rbegin(); it != replica.rend(); ++it) {
    replica_entry e{it->delete_marker, it->source_version_id, it->version_id};
    // A copy of a version the source deleted for good goes too, where deletes propagate.
    if (propagate_deletes && !e.delete_marker && !e.source_version_id.empty() &&
        !source_objects.count(e.source_version_id)) {
      steps.push_back({kind::remove_version, e.version_id});
      continue;
    }
    dst.push_back(std::move(e));
  }
  std::set<std::string> present;
  for (const auto& d : dst)
    if (!d.delete_marker && !d.source_version_id.empty()) present.insert(d.source_version_id);
  auto top_is_marker = [&] { return !dst.empty() && dst.back().delete_marker; };

  // Fill in what is missing, oldest first, with the delete marker that preceded each.
  for (std::size_t i = 0; i < src.size(); ++i) {
    const auto& s = *src[i];
    if (s.delete_marker || present.count(s.version_id)) continue;
    if (propagate_deletes && i > 0 && src[i - 1]->delete_marker && !dst.empty() && !top_is_marker()) {
      steps.push_back({kind::delete_marker, {}});
      dst.push_back({true, {}, {}});
    }
    steps.push_back({kind::copy, s.version_id});
    dst.push_back({false, s.version_id, {}});
    present.insert(s.version_id);
  }

  // The current version must be the source's.
  if (src.empty() || src.back()->delete_marker) {
    if (propagate_deletes && !dst.empty() && !top_is_marker()) steps.push_back({kind::delete_marker, {}});
    return steps;
  }
  const std::string& current = src.back()->version_id;
  if (!dst.empty() && !dst.back().delete_marker && dst.back().source_version_id == current) return steps;
  if (propagate_deletes && top_is_marker()) {
    // The source's delete marker was deleted: remove ours where the version under it is the
    // source's current one, rather than copying it again.
    std::size_t below = dst.size();
    while (below > 0 && dst[below - 1].delete_marker) --below;
    const bool current_below = below > 0 && dst[below - 1].source_version_id == current;
    const bool all_known = std::all_of(dst.begin() + static_cast<std::ptrdiff_t>(below), dst.end(),
                                       [](const replica_entry& e) { return !e.version_id.empty(); });
    if (current_below && all_known) {
      for (std::size_t i = dst.size(); i > below; --i) steps.push_back({kind::remove_version, dst[i - 1].version_id});
      return steps;
    }
  }
  steps.push_back({kind::copy, current});
  return steps;
}

namespace {

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
        if (!r) result.failure = r.error();
        else ++out.versions_removed;
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
        req.meta = with_source_etag(head.value());  // version_id set: every read names it
        std::erase_if(req.meta.user_metadata,
                      [](const auto& kv) { return kv.first == store::source_version_metadata; });
        req.meta.user_metadata.emplace_back(store::source_version_metadata, step.version_id);
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

bool same_history(const store::version_history& a, const store::version_history& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](const auto& x, const auto& y) {
    return x.version_id == y.version_id && x.delete_marker == y.delete_marker;
  });
}

}  // namespace

asio::awaitable<history_result> sync_history(asio::any_io_executor io, pipe::part_buffer_pool& pool,
                                             store::store_catalog& stores, const convergence_limits& limits,
                                             const history_job& job) {
  history_result out;
  auto& source = stores.source_for(job.source_store);
  auto listed = co_await source.versions(job.bucket, job.key);
  if (!listed) {
    out.failure = outcome_for(listed.error(), "source");
    co_return out;
  }
  store::version_history history = std::move(listed.value());
  std::vector<std::optional<store_error>> failures(job.targets.size());
  for (int round = 1;; ++round) {
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
      auto steps = plan_history(history, replica.value(), !target.keeps_deletes);
      auto applied = co_await apply_steps(io, pool, limits, job, source, dest, target, steps, out);
      if (applied.failure) failures[i] = std::move(applied.failure);
      changed = changed || applied.source_changed;
    }
    if (!changed && out.writes() == writes_before) break;  // nothing written: nothing to re-check
    // The history may have grown while it was copied: level again until it holds still.
    auto again = co_await source.versions(job.bucket, job.key);
    if (!again) {
      out.failure = outcome_for(again.error(), "source");
      co_return out;
    }
    if (!changed && same_history(again.value(), history)) break;
    if (round >= limits.max_rounds) {
      out.failure = queue::message_outcome::nak(
          "source_churn", "the version history of " + job.key + " kept changing while it was replicated");
      co_return out;
    }
    history = std::move(again.value());
  }
  out.failure = destination_failures_outcome(failures);
  co_return out;
}

}  // namespace archie::engine
