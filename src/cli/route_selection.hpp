#pragma once
// Which [[route]]s a verify or backfill works on: --route (number or source), --all, or the
// only route. Routes have no names in the config, so a route is named by its source.
#include "cli/command_line.hpp"
#include "config/config.hpp"

#include <string>
#include <variant>
#include <vector>

namespace archie::cli {

/// "store:bucket" or "store:bucket/prefix": how reports and --route name a route.
std::string route_label(const config::route_config& r);
/// "store:bucket" or "store:bucket/prefix" of one destination.
std::string endpoint_label(const config::route_endpoint& e);

/// Route indexes (0-based, config order), or a usage error message.
std::variant<std::vector<std::size_t>, std::string> select_routes(const std::vector<config::route_config>& routes,
                                                                  const command_options& opts);

}  // namespace archie::cli
