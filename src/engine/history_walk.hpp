#pragma once
// The version-history side of verify and backfill, for routes with versions = "all"
// destinations: every key under the route that has versions at the source (delete markers
// on top included, which a listing of current objects never shows), its history compared
// with each such destination's by plan_history. A key whose plan is not empty is a
// difference: `missing` where the destination has no copy of any of its versions,
// `different` otherwise, with the plan's size as the reason. A repair is any event for the
// key: the worker levels the whole history (engine/history_sync.hpp).
#include "engine/route_walk.hpp"

#include <boost/asio/awaitable.hpp>

#include <atomic>
#include <optional>

namespace archie::engine {

/// Whether a route has a destination with versions = "all".
bool keeps_histories(const route::compiled_route& route);

/// Differences only reach `on_difference` (with source set when the key's latest version is
/// an object, unset when it is a delete marker); they are added to the destinations'
/// missing / different tallies. Returns the error that stopped the walk.
boost::asio::awaitable<std::optional<store::store_error>> walk_histories(store::store_catalog& stores,
                                                                         const route::router& router,
                                                                         const route::compiled_route& route,
                                                                         const walk_options& options,
                                                                         walk_progress& progress,
                                                                         const difference_handler& on_difference,
                                                                         const std::atomic<bool>& stop);

}  // namespace archie::engine
