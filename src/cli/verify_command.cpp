#include "cli/verify_command.hpp"

#include "service/exit_codes.hpp"
#include "cli/route_selection.hpp"
#include "cli/walk_report.hpp"
#include "cli/walk_runner.hpp"

#include <boost/json.hpp>

#include <iostream>

namespace archie::cli {
using service::exit_failed;
using service::exit_incomplete;
using service::exit_interrupted;
using service::exit_ok;
using service::exit_usage;

namespace json = boost::json;

namespace {


struct listed_difference {
  std::size_t route = 0;
  std::string destination;
  std::string key;
  engine::key_state state;
  std::string reason;
};

}  // namespace

int run_verify(const config::config& cfg, const command_options& opts) {
  auto selected = select_routes(cfg.routes, opts);
  if (auto* err = std::get_if<std::string>(&selected)) {
    std::cerr << "archie: " << *err << "\n";
    return exit_usage;
  }
  walk_runner runner(cfg);
  std::vector<listed_difference> listed;
  std::uint64_t total = 0;
  engine::difference_handler record = [&](const engine::key_difference& d) -> boost::asio::awaitable<void> {
    std::size_t route_index = runner.current_route();
    const auto& rc = cfg.routes[route_index];
    for (std::size_t i = 0; i < d.at.size(); ++i) {
      auto s = d.at[i].state;
      if (s == engine::key_state::equal || s == engine::key_state::excluded) continue;
      ++total;
      if (listed.size() < static_cast<std::size_t>(opts.max_diffs))
        listed.push_back({route_index, endpoint_label(rc.destinations[i]), d.at[i].key, s, d.at[i].reason});
    }
    co_return;
  };
  auto nothing = []() -> boost::asio::awaitable<void> { co_return; };
  std::function<boost::asio::awaitable<void>()> finish = nothing;
  engine::walk_options options{opts.prefix, opts.checksum, opts.versions};
  walk_outcome all = runner.run(std::get<std::vector<std::size_t>>(selected), options, record, finish);

  std::string verdict = total > 0 ? std::to_string(total) + " differences"
                        : all.error || all.interrupted ? "no differences in what could be compared (incomplete)"
                                                       : "everything is equal";
  if (total > 0 && (all.error || all.interrupted)) verdict += " in what could be compared (incomplete)";
  if (opts.json) {
    json::array diffs;
    for (const auto& d : listed)
      diffs.push_back(json::object{{"route", d.route + 1},
                                   {"destination", d.destination},
                                   {"key", d.key},
                                   {"state", engine::to_string(d.state)},
                                   {"reason", d.reason}});
    json::object report{{"command", "verify"},
                        {"complete", !all.error && !all.interrupted},
                        {"interrupted", all.interrupted},
                        {"error", all.error ? json::value(*all.error) : json::value(nullptr)},
                        {"elapsed_seconds", all.elapsed_seconds},
                        {"differences_total", total},
                        {"routes", routes_json(cfg, all)},
                        {"differences", std::move(diffs)}};
    std::cout << json::serialize(report) << "\n";
  } else {
    print_route_summaries(cfg, all);
    if (!listed.empty()) {
      std::cout << "differences (first " << listed.size() << " of " << total << "):\n";
      for (const auto& d : listed)
        std::cout << "  " << engine::to_string(d.state) << "\t" << d.destination << "\t" << d.key
                  << (d.reason.empty() ? "" : "\t" + d.reason) << "\n";
    }
    std::cout << verdict << " (" << seconds_text(all.elapsed_seconds) << ")\n";
  }
  record_runs(cfg, all, "verify", verdict);
  if (all.error) std::cerr << "archie: verify stopped: " << *all.error << "\n";
  if (all.interrupted) {
    std::cerr << "archie: " << interruption_text(all) << "\n";
    return exit_interrupted;
  }
  // An incomplete comparison says nothing about what it did not see: its own code, so that
  // a script never takes "some store failed" for "differences found" or for "equal".
  if (all.error) return exit_incomplete;
  return total > 0 ? exit_failed : exit_ok;
}

}  // namespace archie::cli
