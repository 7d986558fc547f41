#pragma once
// Keeps the admin server's /status and /status.json (fleet/status_page.hpp) fresh without
// costing anything while nobody looks: a request gets the last rendering and, when it is
// older than a couple of seconds, starts one read of the fleet view off the I/O thread. So
// a page that reloads itself every 5 s sees numbers at most a reload old, and NATS answers
// at most one view per worker every couple of seconds, only while someone watches.
#include "config/config.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>

#include <nats/nats.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>

namespace archie::service {

struct status_documents {
  std::string html;
  std::string json;
};

class status_refresher {
 public:
  /// `jetstream` gives the current JetStream context, or null before NATS is connected.
  status_refresher(boost::asio::any_io_executor io, boost::asio::thread_pool& blocking, const config::config& cfg,
                   std::function<jsCtx*()> jetstream);

  /// The latest rendering (nullopt before the first read finished); starts a new read when
  /// it is stale. Call on the I/O thread.
  std::optional<status_documents> latest();

 private:
  boost::asio::awaitable<void> refresh();

  boost::asio::any_io_executor io_;
  boost::asio::thread_pool& blocking_;
  const config::config& cfg_;
  std::function<jsCtx*()> jetstream_;
  std::optional<status_documents> documents_;
  std::chrono::steady_clock::time_point read_at_{};
  bool reading_ = false;
};

}  // namespace archie::service
