#include "cli/walk_runner.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/as_tuple.hpp>

#include <unistd.h>

#include <chrono>

namespace archie::cli {
namespace asio = boost::asio;
using steady = std::chrono::steady_clock;

walk_runner::walk_runner(const config::config& cfg)
    : cfg_(cfg), stores_(std::make_unique<store::store_set>(io.get_executor(), blocking, cfg)), router_(cfg.routes) {}

walk_runner::~walk_runner() {
  stores_.reset();
  blocking.join();
}

walk_outcome walk_runner::run(const std::vector<std::size_t>& routes, const engine::walk_options& options,
                              const engine::difference_handler& on_difference,
                              const std::function<asio::awaitable<void>()>& finish) {
  walk_outcome out;
  auto started = steady::now();
  bool done = false;
  const route_walk_report* current = nullptr;
  progress_display display(stderr, ::isatty(STDERR_FILENO) == 1);
  asio::signal_set signals(io, SIGINT, SIGTERM);
  asio::steady_timer ticker(io);

  auto show = [&](const char* phase) {
    double secs = std::chrono::duration<double>(steady::now() - started).count();
    std::vector<progress_field> f;
    if (current) {
      const auto& p = current->progress;
      f.push_back({"route", static_cast<double>(current->index + 1)});
      f.push_back({"source_listed", static_cast<double>(p.source_listed)});
      std::uint64_t dest_listed = 0;
      for (const auto& d : p.destinations) dest_listed += d.listed;
      f.push_back({"destination_listed", static_cast<double>(dest_listed)});
      f.push_back({"compared", static_cast<double>(p.compared)});
      f.push_back({"differences", static_cast<double>(p.differences)});
      f.push_back({"keys_per_s", secs > 0 ? static_cast<double>(p.compared) / secs : 0.0, false});
    }
    if (extra_fields) extra_fields(f);
    f.push_back({"elapsed_s", secs, false});
    display.show(phase, f);
  };

  auto tick = [&]() -> asio::awaitable<void> {
    while (!done) {
      ticker.expires_after(progress_display::interval(display.tty()));
      co_await ticker.async_wait(asio::as_tuple(asio::use_awaitable));
      if (!done) show(stop_ ? "stopping" : "walking");
    }
  };
  auto watch_signals = [&]() -> asio::awaitable<void> {
    auto [ec, sig] = co_await signals.async_wait(asio::as_tuple(asio::use_awaitable));
    if (!ec) stop_ = true;
  };
  auto work = [&]() -> asio::awaitable<void> {
    for (auto index : routes) {
      if (stop_) break;
      current_route_ = index;
      out.routes.push_back({index, {}});
      current = &out.routes.back();
      auto& report = out.routes.back();
      const auto& compiled = router_.routes()[index];
      auto err = co_await engine::walk_route(*stores_, router_, compiled, options, report.progress, on_difference, stop_);
      if (err) {
        out.error = err->describe();
        break;
      }
    }
    co_await finish();
    done = true;
    ticker.cancel();
    signals.cancel();
  };
  asio::co_spawn(io, tick(), asio::detached);
  asio::co_spawn(io, watch_signals(), asio::detached);
  asio::co_spawn(io, work(), [&](std::exception_ptr e) {
    done = true;
    ticker.cancel();
    signals.cancel();
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        out.error = x.what();
      }
    }
  });
  io.run();
  io.restart();
  show("done");
  display.finish();
  out.interrupted = stop_ && !out.error &&
                    (out.routes.size() < routes.size() || (!out.routes.empty() && !out.routes.back().progress.finished));
  out.elapsed_seconds = std::chrono::duration<double>(steady::now() - started).count();
  return out;
}

}  // namespace archie::cli
