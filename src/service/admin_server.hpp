#pragma once
// The operator-facing HTTP endpoint: /live, /ready, /metrics, /status and /status.json. Beast stays out of this header
// so including it does not cost every translation unit a Beast compile.
#include "config/config.hpp"
#include "health/readiness.hpp"
#include "service/status_refresher.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>

namespace archie::service {

class admin_server {
 public:
  /// Binds immediately so a busy port fails start-up with a clear error (throws system_error).
  admin_server(boost::asio::any_io_executor executor, const config::http_config& cfg, health::readiness& ready);
  ~admin_server();

  /// The bound port (useful when the config asked for port 0).
  std::uint16_t port() const;
  /// Accepts and serves connections until stop() is called.
  boost::asio::awaitable<void> serve();
  /// Closes the listener; connections in progress finish their current request.
  void stop();
  /// Serves /status (HTML) and /status.json from `source` (nullopt: not read yet, a page that
  /// reloads itself and a 503). Without one, both are 404.
  void set_status_source(std::function<std::optional<status_documents>()> source);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace archie::service
