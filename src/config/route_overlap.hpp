#pragma once
// Routes whose key ranges overlap make archie delete what it should keep: a walk of one
// route (verify, backfill --delete-extra) would count the other's replicas as extra, and a
// destination inside a source range copies its own copies forever. Such configs are refused
// at load, naming both routes and the shared range.
#include "config/config.hpp"
#include "config/config_error.hpp"

#include <vector>

namespace archie::config {

/// One problem per overlapping pair: two destination ranges (any routes) that share keys, or
/// a cycle of routes where replicas land in a source range that leads back to them.
/// Routes and destinations are numbered from 1, as `--route` counts them.
std::vector<problem> find_route_overlaps(const config& c);

}  // namespace archie::config
