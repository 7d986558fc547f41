#pragma once
// Every configured store, built once from the config: the clients, the sources and the
// destinations the engine works with, and the periodic reachability checks behind /ready.
// The engine sees it only as a store_catalog and never builds a client itself.
#include "config/config.hpp"
#include "health/readiness.hpp"
#include "http/send_budget.hpp"
#include "store/store_catalog.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/thread_pool.hpp>

#include <functional>
#include <memory>
#include <span>
#include <string>

namespace archie::store {

class store_set final : public store_catalog {
 public:
  /// The pace of a store's requests and bodies (a fleet budget), by store name; null: none.
  using budget_lookup = std::function<std::shared_ptr<http::send_budget>(const std::string& store)>;

  /// Throws std::runtime_error naming the store or route that cannot be used. `budget_for`
  /// (optional) paces what each store is sent.
  store_set(boost::asio::any_io_executor io, boost::asio::thread_pool& blocking, const config::config& cfg,
            const budget_lookup& budget_for = {});
  ~store_set() override;

  source& source_for(const std::string& store) override;  ///< S3 stores only
  destination& destination_for(const std::string& store) override;
  std::unique_ptr<object_listing> list(const std::string& store, const std::string& bucket,
                                       const std::string& prefix) override;
  async_result<done> read(const std::string& store, const std::string& bucket, const std::string& key,
                          std::span<std::byte> into, std::uint64_t offset, const std::string& if_match) override;

  /// One check per store and bucket used by a route (HEAD bucket, or the fs root).
  void register_checks(health::readiness& ready);
  /// Starts refreshing the checks every 10 s on the I/O executor.
  void start_health_checks();
  /// Shutdown past its deadline: every S3 and GCS request in flight fails at once and none
  /// is sent after (local directories have no requests to cut).
  void abort_requests();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace archie::store
