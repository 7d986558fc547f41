#include "cli/walk_report.hpp"

#include "cli/route_selection.hpp"
#include "fleet/run_summaries.hpp"

#include <unistd.h>

#include <chrono>
#include <climits>

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

void record_runs(const config::config& cfg, const walk_outcome& out, const std::string& command,
                 const std::string& result, queue::nats_connection* nats) {
  char host[HOST_NAME_MAX + 1] = {};
  gethostname(host, sizeof host - 1);
  const auto now = std::chrono::system_clock::now();
  std::vector<fleet::run_summary> runs;
  for (const auto& r : out.routes) {
    fleet::run_summary s;
    s.command = command;
    s.route = static_cast<std::int64_t>(r.index + 1);
    s.source = route_label(cfg.routes[r.index]);
    s.finished_unix = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
    s.elapsed_seconds = out.elapsed_seconds;
    s.complete = r.progress.finished && !out.error && !out.interrupted;
    s.compared = r.progress.compared;
    for (const auto& d : r.progress.destinations) {
      s.missing += d.missing;
      s.different += d.different;
      s.extra += d.extra;
    }
    s.result = result;
    s.host = host;
    runs.push_back(std::move(s));
  }
  if (runs.empty()) return;
  try {
    std::unique_ptr<queue::nats_connection> own;
    if (!nats) {
      own = queue::nats_connection::connect(cfg.queue.nats);
      nats = own.get();
    }
    fleet::record_runs(nats->jetstream(), cfg.fleet.runs_bucket, runs);
    if (own) own->close();
  } catch (const std::exception& e) {
    std::cerr << "archie: warning: this " << command << " was not recorded for archie status: " << e.what() << "\n";
  }
}

}  // namespace archie::cli
