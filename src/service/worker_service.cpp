#include "service/worker_service.hpp"

#include "archie_version.hpp"
#include "http/admin_server.hpp"
#include "log/logger.hpp"
#include "metrics/registry.hpp"
#include "service/readiness.hpp"
#include "service/shutdown.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <prometheus/gauge.h>

namespace archie::service {
namespace asio = boost::asio;

namespace {

void publish_build_info() {
  prometheus::BuildGauge()
      .Name("archie_build_info")
      .Help("Always 1; labels carry the running archie version")
      .Register(metrics::registry())
      .Add({{"version", ARCHIE_VERSION}})
      .Set(1);
}

}  // namespace

int run_worker(const config::config& cfg) {
  asio::io_context io(1);
  readiness ready;
  publish_build_info();

  std::unique_ptr<http::admin_server> admin;
  try {
    admin = std::make_unique<http::admin_server>(io.get_executor(), cfg.http, ready);
  } catch (const std::exception& e) {
    log::error("cannot start admin HTTP server",
               {{"address", cfg.http.address}, {"port", cfg.http.port}, {"error", e.what()}});
    return 1;
  }
  log::info("admin server listening", {{"address", cfg.http.address}, {"port", admin->port()}});

  shutdown_coordinator shutdown(io.get_executor(), ready, cfg.worker.shutdown_wait);
  shutdown.on_finished([&] {
    admin->stop();
    io.stop();
  });

  asio::co_spawn(io, admin->serve(), asio::detached);
  asio::co_spawn(io, shutdown.watch(), asio::detached);
  log::info("archie started", {{"version", ARCHIE_VERSION}, {"concurrency", cfg.worker.concurrency}});
  io.run();
  log::info("archie stopped");
  return 0;
}

}  // namespace archie::service
