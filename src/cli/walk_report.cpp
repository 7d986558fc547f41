#include "cli/walk_report.hpp"

#include "cli/route_selection.hpp"

#include <cstdio>
#include <iostream>

namespace archie::cli {
namespace json = boost::json;
namespace {

json::object tally_json(const engine::destination_tally& t) {
  return {{"listed", t.listed},   {"equal", t.equal},         {"missing", t.missing},
          {"extra", t.extra},     {"different", t.different}, {"excluded", t.excluded},
          {"marker_reads", t.marker_reads}, {"content_bytes", t.content_bytes}};
}

}  // namespace

boost::json::array routes_json(const config::config& cfg, const walk_outcome& out) {
  json::array routes;
  for (const auto& r : out.routes) {
    const auto& rc = cfg.routes[r.index];
    json::array dests;
    for (std::size_t i = 0; i < rc.destinations.size() && i < r.progress.destinations.size(); ++i) {
      auto t = tally_json(r.progress.destinations[i]);
      t["destination"] = endpoint_label(rc.destinations[i]);
      dests.push_back(std::move(t));
    }
    routes.push_back(json::object{{"route", r.index + 1},
                                  {"source", route_label(rc)},
                                  {"source_listed", r.progress.source_listed},
                                  {"compared", r.progress.compared},
                                  {"finished", r.progress.finished},
                                  {"last_key", r.progress.last_key},
                                  {"destinations", std::move(dests)}});
  }
  return routes;
}

void print_route_summaries(const config::config& cfg, const walk_outcome& out) {
  for (const auto& r : out.routes) {
    const auto& rc = cfg.routes[r.index];
    std::cout << "route " << r.index + 1 << " " << route_label(rc) << ": " << r.progress.source_listed
              << " source keys, " << r.progress.compared << " keys compared"
              << (r.progress.finished ? "" : " (incomplete)") << "\n";
    for (std::size_t i = 0; i < rc.destinations.size() && i < r.progress.destinations.size(); ++i) {
      const auto& t = r.progress.destinations[i];
      std::cout << "  " << endpoint_label(rc.destinations[i]) << ": equal " << t.equal << ", missing " << t.missing
                << ", different " << t.different << ", extra " << t.extra << ", excluded " << t.excluded << "\n";
    }
  }
}

std::string seconds_text(double seconds) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f s", seconds);
  return buf;
}

std::string interruption_text(const walk_outcome& out) {
  std::uint64_t compared = 0;
  std::string last;
  for (const auto& r : out.routes) {
    compared += r.progress.compared;
    if (!r.progress.last_key.empty()) last = r.progress.last_key;
  }
  return "interrupted after " + std::to_string(compared) + " keys" + (last.empty() ? "" : " (last key: " + last + ")");
}

}  // namespace archie::cli
