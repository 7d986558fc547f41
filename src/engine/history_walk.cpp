#include "engine/history_walk.hpp"

#include "engine/history_sync.hpp"

#include <algorithm>

namespace archie::engine {
namespace {

std::string plan_summary(const std::vector<history_step>& steps) {
  int copies = 0, markers = 0, removals = 0;
  for (const auto& s : steps) {
    if (s.what == history_step::kind::copy) ++copies;
    else if (s.what == history_step::kind::delete_marker) ++markers;
    else ++removals;
  }
  return "versions: " + std::to_string(copies) + " to copy, " + std::to_string(markers) + " delete markers to write, " +
         std::to_string(removals) + " to remove";
}

// One key's history against each versions = "all" destination.
boost::asio::awaitable<std::optional<store::store_error>> compare_key(
    store::store_catalog& stores, const route::router& router, const route::compiled_route& route,
    const std::string& key, const store::version_history& history, walk_progress& progress,
    const difference_handler& on_difference) {
  const auto& src = route.cfg.source;
  const auto& dests = route.cfg.destinations;
  // Another route with a longer source prefix owns it; excluded keys are not copied.
  if (!walk_owns(router, route, key) || route.exclude_copy.matches(key)) co_return std::nullopt;
  key_difference diff;
  diff.source_key = key;
  diff.versions_only = true;
  if (!history.empty() && !history.front().delete_marker)
    diff.source = store::listed_entry{key, history.front().size, history.front().etag, std::nullopt};
  diff.at.assign(dests.size(), {});
  bool differs = false;
  for (std::size_t i = 0; i < dests.size(); ++i) {
    diff.at[i].key = dests[i].prefix + key.substr(src.prefix.size());
    if (dests[i].versions != config::versions_policy::all) continue;
    auto& dest = stores.destination_for(dests[i].store);
    auto replica = co_await dest.history(dests[i].bucket, diff.at[i].key);
    if (!replica) co_return replica.error();
    auto steps = plan_history(history, replica.value(), removes_at(route, dests[i], key), dest.holds_delete_markers());
    if (steps.empty()) continue;
    auto& verdict = diff.at[i];
    const bool none_copied = std::none_of(replica->begin(), replica->end(),
                                          [](const store::object_version& v) { return !v.source_version_id.empty(); });
    verdict.state = none_copied ? key_state::missing : key_state::different;
    verdict.reason = plan_summary(steps);
    ++(none_copied ? progress.destinations[i].missing : progress.destinations[i].different);
    differs = true;
  }
  if (!differs) co_return std::nullopt;
  ++progress.differences;
  co_await on_difference(diff);
  co_return std::nullopt;
}

}  // namespace

bool keeps_histories(const route::compiled_route& route) {
  return std::any_of(route.cfg.destinations.begin(), route.cfg.destinations.end(),
                     [](const config::route_endpoint& d) { return d.versions == config::versions_policy::all; });
}

boost::asio::awaitable<std::optional<store::store_error>> walk_histories(store::store_catalog& stores,
                                                                         const route::router& router,
                                                                         const route::compiled_route& route,
                                                                         const walk_options& options,
                                                                         walk_progress& progress,
                                                                         const difference_handler& on_difference,
                                                                         const std::atomic<bool>& stop) {
  if (!keeps_histories(route)) co_return std::nullopt;
  const auto& src = route.cfg.source;
  auto listing_prefix = walk_listing_prefix(src, options.prefix);
  if (!listing_prefix) co_return std::nullopt;
  auto& source = stores.source_for(src.store);
  std::string key_marker, version_marker, key;
  store::version_history history;  // of `key`, newest first; a key may span pages
  for (;;) {
    if (stop.load(std::memory_order_relaxed)) co_return std::nullopt;
    auto page = co_await source.versions_page(src.bucket, *listing_prefix, key_marker, version_marker);
    if (!page) co_return page.error();
    for (auto& [k, v] : page->entries) {
      if (k != key && !history.empty()) {
        if (auto err = co_await compare_key(stores, router, route, key, history, progress, on_difference)) co_return err;
        history.clear();
      }
      key = k;
      history.push_back(std::move(v));
    }
    if (!page->truncated || (page->next_key_marker.empty() && page->next_version_id_marker.empty())) break;
    key_marker = page->next_key_marker;
    version_marker = page->next_version_id_marker;
  }
  if (!history.empty())
    if (auto err = co_await compare_key(stores, router, route, key, history, progress, on_difference)) co_return err;
  co_return std::nullopt;
}

}  // namespace archie::engine
