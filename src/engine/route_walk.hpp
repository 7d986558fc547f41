#pragma once
// One route's source listing merged by key with every destination's listing (each key
// rewritten from the source prefix to the destination's), streamed a page per side at a
// time: memory does not grow with the bucket. Keys another route covers (a longer source
// prefix wins) are left to that route; exclude patterns are honoured (exclude_copy at the
// source, exclude_remove for extras). Only keys with a difference reach the handler.
#include "engine/divergence.hpp"
#include "route/router.hpp"
#include "store/store_catalog.hpp"

#include <boost/asio/awaitable.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace archie::engine {

struct destination_verdict {
  key_state state = key_state::equal;
  std::string key;     ///< the key at the destination
  std::string reason;  ///< different: what differs
};

/// One key with at least one destination not equal to the source.
struct key_difference {
  std::string source_key;
  std::optional<store::listed_entry> source;  ///< absent: extra somewhere
  std::vector<destination_verdict> at;        ///< per destination of the route, config order
  /// Found by the history pass (engine/history_walk.hpp): only the versions = "all"
  /// destinations differ, and a repair must touch only them.
  bool versions_only = false;
};

struct destination_tally {
  std::uint64_t listed = 0, equal = 0, missing = 0, extra = 0, different = 0, excluded = 0, marker_reads = 0;
  std::uint64_t content_bytes = 0;  ///< read from each side by content comparison
  std::uint64_t differences() const { return missing + extra + different; }
};

/// Counters the walk keeps current, read by progress displays between its steps.
struct walk_progress {
  std::uint64_t source_listed = 0;
  std::uint64_t compared = 0;     ///< keys decided (source and destination sides)
  std::uint64_t differences = 0;  ///< keys handed to the handler
  std::vector<destination_tally> destinations;
  std::string last_key;  ///< the last source-side key decided: where an interrupted walk stopped
  bool finished = false;
};

using difference_handler = std::function<boost::asio::awaitable<void>(const key_difference&)>;

struct walk_options {
  std::string prefix;  ///< only source keys under it (empty: the whole route)
  /// Compare content by reading both sides (parts of content_part_size, source and replica
  /// read at the same time) for every key present on both with the same size, instead of
  /// trusting ETags and markers: for stores whose ETags are not comparable.
  bool compare_content = false;
  /// Also compare the version histories of versions = "all" destinations
  /// (engine/history_walk.hpp) once the current versions are walked.
  bool versions = false;
};

/// The source listing prefix a walk of `src` with --prefix `prefix` uses (the route's prefix
/// and the part of `prefix` beyond it); nullopt when the two do not meet.
std::optional<std::string> walk_listing_prefix(const config::route_endpoint& src, const std::string& prefix);

inline constexpr std::size_t content_part_size = 8u << 20;

/// Whether a walk of `route` answers for source key `key`: another route with a longer source
/// prefix owns it otherwise (neither side is this walk's).
inline bool walk_owns(const route::router& router, const route::compiled_route& route, const std::string& key) {
  return router.route(route.cfg.source.bucket, key).route == &route;
}
/// Whether destination `dest` of `route` loses what the source deletes at `key` (not with
/// deletes = "ignore", nor for an exclude_remove key).
inline bool removes_at(const route::compiled_route& route, const config::route_endpoint& dest, const std::string& key) {
  return dest.deletes == config::deletes_policy::propagate && !route.exclude_remove.matches(key);
}

/// Returns the error that stopped the walk, or nullopt when complete or stopped by `stop`
/// (progress.finished says which).
boost::asio::awaitable<std::optional<store::store_error>> walk_route(store::store_catalog& stores,
                                                                     const route::router& router,
                                                                     const route::compiled_route& route,
                                                                     const walk_options& options,
                                                                     walk_progress& progress,
                                                                     const difference_handler& on_difference,
                                                                     const std::atomic<bool>& stop);

}  // namespace archie::engine
