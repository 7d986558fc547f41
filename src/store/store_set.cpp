#include "store/store_set.hpp"

#include "log/logger.hpp"
#include "store/fs/fs_destination.hpp"
#include "store/fs/fs_listing.hpp"
#include "store/gcs/gcs_client.hpp"
#include "store/gcs/gcs_destination.hpp"
#include "store/gcs/gcs_listing.hpp"
#include "store/s3/s3_client.hpp"
#include "store/s3/s3_destination.hpp"
#include "store/s3/s3_listing.hpp"
#include "store/s3/s3_source.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <map>
#include <mutex>
#include <stdexcept>

namespace archie::store {
namespace asio = boost::asio;

namespace {

struct store_health {
  std::mutex mutex;  // read by the admin server's readiness handler
  bool ok = true;
  std::string detail = "not checked yet";
};

}  // namespace

struct store_set::impl {
  asio::any_io_executor io;
  asio::thread_pool& blocking;
  std::map<std::string, config::fs_store_config> fs_configs;
  // Clients before what borrows them: members are destroyed in reverse order.
  std::map<std::string, std::unique_ptr<s3::s3_client>> s3_clients;
  std::map<std::string, std::unique_ptr<gcs::gcs_client>> gcs_clients;
  std::map<std::string, std::unique_ptr<source>> sources;
  std::map<std::string, std::unique_ptr<destination>> destinations;
  std::map<std::string, std::shared_ptr<store_health>> health;  // "store/bucket"

  impl(asio::any_io_executor ex, asio::thread_pool& pool, const config::config& cfg, const budget_lookup& budget_for)
      : io(ex), blocking(pool) {
    for (const auto& [name, sc] : cfg.stores) {
      std::shared_ptr<http::send_budget> budget = budget_for ? budget_for(name) : nullptr;
      if (const auto* s3c = std::get_if<config::s3_store_config>(&sc)) {
        auto client = std::make_unique<s3::s3_client>(io, name, *s3c, budget);
        sources[name] = std::make_unique<s3::s3_source>(*client);
        destinations[name] = std::make_unique<s3::s3_destination>(*client);
        s3_clients[name] = std::move(client);
      } else if (const auto* gcsc = std::get_if<config::gcs_store_config>(&sc)) {
        // The pool signs service-account JWTs and reads the key file off the I/O thread.
        auto client = std::make_unique<gcs::gcs_client>(io, name, *gcsc, &blocking, budget);
        destinations[name] = std::make_unique<gcs::gcs_destination>(*client);
        gcs_clients[name] = std::move(client);
      } else if (const auto* fsc = std::get_if<config::fs_store_config>(&sc)) {
        destinations[name] = std::make_unique<fs::fs_destination>(name, *fsc, blocking, budget);
        fs_configs[name] = *fsc;
      }
    }
    for (const auto& r : cfg.routes) {
      if (!sources.count(r.source.store))
        throw std::runtime_error("route source store \"" + r.source.store + "\" is not an S3 store");
      health[r.source.store + "/" + r.source.bucket] = std::make_shared<store_health>();
      for (const auto& d : r.destinations) {
        if (!destinations.count(d.store))
          throw std::runtime_error("route destination store \"" + d.store + "\" is not configured");
        health[d.store + "/" + d.bucket] = std::make_shared<store_health>();
      }
    }
  }

  asio::awaitable<void> health_loop() {
    asio::steady_timer timer(io);
    for (;;) {
      for (auto& [id, h] : health) {
        auto slash = id.find('/');
        std::string store_name = id.substr(0, slash), bucket = id.substr(slash + 1);
        auto& dest = *destinations.at(store_name);
        auto r = co_await dest.check_bucket(bucket);
        std::lock_guard lock(h->mutex);
        h->ok = r.has_value();
        h->detail = r ? "reachable" : r.error().describe();
      }
      timer.expires_after(std::chrono::seconds(10));
      co_await timer.async_wait(asio::use_awaitable);
    }
  }
};

store_set::store_set(asio::any_io_executor io, asio::thread_pool& blocking, const config::config& cfg,
                     const budget_lookup& budget_for)
    : impl_(std::make_unique<impl>(io, blocking, cfg, budget_for)) {}
store_set::~store_set() = default;

source& store_set::source_for(const std::string& store) { return *impl_->sources.at(store); }
destination& store_set::destination_for(const std::string& store) { return *impl_->destinations.at(store); }

std::unique_ptr<object_listing> store_set::list(const std::string& store, const std::string& bucket,
                                                const std::string& prefix) {
  if (auto it = impl_->s3_clients.find(store); it != impl_->s3_clients.end())
    return std::make_unique<s3::s3_listing>(*it->second, bucket, prefix);
  if (auto it = impl_->gcs_clients.find(store); it != impl_->gcs_clients.end())
    return std::make_unique<gcs::gcs_listing>(*it->second, bucket, prefix);
  const auto& fsc = impl_->fs_configs.at(store);
  return std::make_unique<fs::fs_listing>(impl_->blocking, store, fsc.root, bucket, prefix);
}

async_result<done> store_set::read(const std::string& store, const std::string& bucket, const std::string& key,
                                   std::span<std::byte> into, std::uint64_t offset, const std::string& if_match) {
  if (auto it = impl_->s3_clients.find(store); it != impl_->s3_clients.end()) {
    s3::get_options opts;
    opts.offset = offset;
    opts.if_match = if_match;
    auto r = co_await it->second->get_object(bucket, key, into, opts);
    if (!r) co_return r.error();
    co_return done{};
  }
  if (auto it = impl_->gcs_clients.find(store); it != impl_->gcs_clients.end()) {
    gcs::download_options opts;
    opts.offset = offset;
    auto r = co_await it->second->download(bucket, key, into, opts);
    if (!r) co_return r.error();
    co_return done{};
  }
  auto& local = dynamic_cast<fs::fs_destination&>(*impl_->destinations.at(store));
  co_return co_await local.read(bucket, key, into, offset);
}

void store_set::abort_requests() {
  for (auto& [name, client] : impl_->s3_clients) client->abort_requests();
  for (auto& [name, client] : impl_->gcs_clients) client->abort_requests();
}

void store_set::register_checks(health::readiness& ready) {
  for (auto& [id, h] : impl_->health) {
    auto shared = h;
    ready.add_check("store " + id, [shared]() -> health::check_result {
      std::lock_guard lock(shared->mutex);
      return {shared->ok, shared->detail};
    });
  }
}

void store_set::start_health_checks() { asio::co_spawn(impl_->io, impl_->health_loop(), asio::detached); }

}  // namespace archie::store
