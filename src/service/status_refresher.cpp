#include "service/status_refresher.hpp"

#include "async/run_blocking.hpp"
#include "fleet/fleet_view.hpp"
#include "fleet/status_page.hpp"
#include "log/logger.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

namespace archie::service {
namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {
constexpr auto fresh_for = 2s;     // a newer read is not started before this
constexpr auto shown_for = 60s;    // an older rendering is not shown at all
}  // namespace

status_refresher::status_refresher(asio::any_io_executor io, asio::thread_pool& blocking, const config::config& cfg,
                                   std::function<jsCtx*()> jetstream)
    : io_(io), blocking_(blocking), cfg_(cfg), jetstream_(std::move(jetstream)) {}

std::optional<status_documents> status_refresher::latest() {
  const auto age = std::chrono::steady_clock::now() - read_at_;
  if (!reading_ && (!documents_ || age >= fresh_for)) {
    reading_ = true;
    asio::co_spawn(io_, refresh(), asio::detached);
  }
  if (documents_ && age < shown_for) return documents_;
  return std::nullopt;
}

asio::awaitable<void> status_refresher::refresh() {
  jsCtx* js = jetstream_();
  if (js) {
    try {
      auto read = [this, js] {
        fleet::fleet_view v = fleet::read_fleet_view(cfg_, js);
        return status_documents{fleet::render_status_page(v), fleet::fleet_view_json(v) + "\n"};
      };
      documents_ = co_await async::run_blocking(blocking_, read);
      read_at_ = std::chrono::steady_clock::now();
    } catch (const std::exception& e) {
      log::warn("cannot read the fleet's state for /status", {{"error", e.what()}});
    }
  }
  reading_ = false;
}

}  // namespace archie::service
