#include "config/route_overlap.hpp"

#include <filesystem>
#include <string>
#include <variant>

namespace archie::config {
namespace {

// Two store names may reach the same place (other credentials, same endpoint or root).
std::string place_of(const config& c, const std::string& store) {
  auto it = c.stores.find(store);
  if (it == c.stores.end()) return "name:" + store;
  if (const auto* s3 = std::get_if<s3_store_config>(&it->second)) {
    std::string e = s3->endpoint;
    while (!e.empty() && e.back() == '/') e.pop_back();
    return "s3:" + e;
  }
  if (const auto* gcs = std::get_if<gcs_store_config>(&it->second)) {
    std::string e = gcs->endpoint;
    while (!e.empty() && e.back() == '/') e.pop_back();
    return "gcs:" + e;
  }
  const auto& fs = std::get<fs_store_config>(it->second);
  std::string root = std::filesystem::path(fs.root).lexically_normal().string();
  while (root.size() > 1 && root.back() == '/') root.pop_back();  // "/data/" is "/data"
  return "fs:" + root;
}

struct key_range {
  std::string place;
  const route_endpoint* at;
  std::string name;  ///< "route[1].destinations[2]"
};

// Keys under one prefix and keys under another meet when one prefix starts the other.
bool overlap(const key_range& a, const key_range& b) {
  if (a.place != b.place || a.at->bucket != b.at->bucket) return false;
  const std::string& p = a.at->prefix;
  const std::string& q = b.at->prefix;
  return p.compare(0, q.size(), q) == 0 || q.compare(0, p.size(), p) == 0;
}

std::string describe_range(const route_endpoint& e) {
  std::string s = "store \"" + e.store + "\" bucket \"" + e.bucket + "\"";
  return e.prefix.empty() ? s + " (every key)" : s + " prefix \"" + e.prefix + "\"";
}

}  // namespace

std::vector<problem> find_route_overlaps(const config& c) {
  std::vector<problem> out;
  const std::size_t n = c.routes.size();
  std::vector<key_range> sources;
  std::vector<std::vector<key_range>> dests(n);
  for (std::size_t r = 0; r < n; ++r) {
    const auto& rc = c.routes[r];
    const std::string route_name = "route[" + std::to_string(r + 1) + "]";
    sources.push_back({place_of(c, rc.source.store), &rc.source, route_name + ".source"});
    for (std::size_t d = 0; d < rc.destinations.size(); ++d)
      dests[r].push_back({place_of(c, rc.destinations[d].store), &rc.destinations[d],
                          route_name + ".destinations[" + std::to_string(d + 1) + "]"});
  }

  // Two writers of one range: each would take the other's replicas for its own extras.
  std::vector<const key_range*> all;
  for (const auto& per_route : dests)
    for (const auto& d : per_route) all.push_back(&d);
  for (std::size_t i = 0; i < all.size(); ++i)
    for (std::size_t j = i + 1; j < all.size(); ++j)
      if (overlap(*all[i], *all[j]))
        out.push_back({all[j]->name,
                       "writes into the same keys as " + all[i]->name + " (" + describe_range(*all[i]->at) + " and " +
                           describe_range(*all[j]->at) +
                           "): a walk of one route would delete the other's replicas; give each a prefix of its own",
                       0});

  // Replicas that become sources again: route r feeds route s when a destination of r lies in
  // s's source range. A path back to r means copies of copies, without end.
  std::vector<std::vector<bool>> feeds(n, std::vector<bool>(n, false));
  for (std::size_t r = 0; r < n; ++r)
    for (std::size_t s = 0; s < n; ++s)
      for (const auto& d : dests[r])
        if (overlap(d, sources[s])) feeds[r][s] = true;
  auto reach = feeds;
  for (std::size_t k = 0; k < n; ++k)
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < n; ++j)
        if (reach[i][k] && reach[k][j]) reach[i][j] = true;
  for (std::size_t r = 0; r < n; ++r) {
    if (!reach[r][r]) continue;
    for (const auto& d : dests[r]) {
      for (std::size_t s = 0; s < n; ++s) {
        if (!overlap(d, sources[s]) || !reach[s][r]) continue;
        std::string why = s == r ? "lies inside the route's own source range (" + describe_range(*sources[s].at) +
                                       "): every replica would be replicated again"
                                 : "lies inside the source range of route[" + std::to_string(s + 1) + "] (" +
                                       describe_range(*sources[s].at) + "), which leads back to route[" +
                                       std::to_string(r + 1) + "]: replicas would be copied in a loop";
        out.push_back({d.name, why, 0});
        break;
      }
    }
  }
  return out;
}

}  // namespace archie::config
