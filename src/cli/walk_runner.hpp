#pragma once
// What verify and backfill share: the stores built from the config, the selected routes
// walked one after the other (engine/route_walk), a progress display ticking beside the walk,
// and SIGINT/SIGTERM turned into a clean stop that reports how far the walk got.
#include "cli/progress_display.hpp"
#include "config/config.hpp"
#include "engine/route_walk.hpp"
#include "route/router.hpp"
#include "store/store_set.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace archie::cli {

struct route_walk_report {
  std::size_t index = 0;  ///< 0-based, config order
  engine::walk_progress progress;
};

struct walk_outcome {
  std::vector<route_walk_report> routes;
  std::optional<std::string> error;  ///< the store failure that stopped a walk
  bool interrupted = false;          ///< stopped by a signal before the end
  double elapsed_seconds = 0;
};

class walk_runner {
 public:
  explicit walk_runner(const config::config& cfg);
  ~walk_runner();

  boost::asio::io_context io;
  boost::asio::thread_pool blocking{4};
  store::store_set& stores() { return *stores_; }
  const config::config& cfg() const { return cfg_; }

  /// Extra progress fields (the repair counters of backfill) and its phase once the walks end.
  std::function<void(std::vector<progress_field>&)> extra_fields;
  /// Walks `routes` calling `on_difference`, then awaits `finish` (pending repairs); runs the
  /// io_context until both are done.
  walk_outcome run(const std::vector<std::size_t>& routes, const engine::walk_options& options,
                   const engine::difference_handler& on_difference,
                   const std::function<boost::asio::awaitable<void>()>& finish);
  const std::atomic<bool>& stop_requested() const { return stop_; }
  /// The route being walked (0-based): which route a difference belongs to.
  std::size_t current_route() const { return current_route_; }

 private:
  const config::config& cfg_;
  std::unique_ptr<store::store_set> stores_;
  route::router router_;
  std::atomic<bool> stop_{false};
  std::size_t current_route_ = 0;
};

}  // namespace archie::cli
