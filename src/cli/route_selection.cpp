#include "cli/route_selection.hpp"

namespace archie::cli {

std::string endpoint_label(const config::route_endpoint& e) {
  return e.store + ":" + e.bucket + (e.prefix.empty() ? "" : "/" + e.prefix);
}

std::string route_label(const config::route_config& r) { return endpoint_label(r.source); }

std::variant<std::vector<std::size_t>, std::string> select_routes(const std::vector<config::route_config>& routes,
                                                                  const command_options& opts) {
  if (routes.empty()) return std::string("the config has no [[route]]");
  std::vector<std::size_t> out;
  if (opts.all) {
    for (std::size_t i = 0; i < routes.size(); ++i) out.push_back(i);
    return out;
  }
  if (!opts.route) {
    if (routes.size() == 1) return std::vector<std::size_t>{0};
    return "the config has " + std::to_string(routes.size()) + " routes: pick one with --route or use --all";
  }
  const std::string& want = *opts.route;
  if (!want.empty() && want.size() <= 9 && want.find_first_not_of("0123456789") == std::string::npos) {
    std::size_t n = std::stoul(want);
    if (n >= 1 && n <= routes.size()) return std::vector<std::size_t>{n - 1};
    return "--route " + want + ": the config has routes 1 to " + std::to_string(routes.size());
  }
  for (std::size_t i = 0; i < routes.size(); ++i)
    if (route_label(routes[i]) == want) out.push_back(i);
  if (out.empty()) {
    std::string known;
    for (const auto& r : routes) known += (known.empty() ? "" : ", ") + route_label(r);
    return "--route " + want + ": no route has that source (routes: " + known + ")";
  }
  return out;
}

}  // namespace archie::cli
