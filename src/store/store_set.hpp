#pragma once
// Every configured store, built once from the config: the clients, the sources and the
// destinations the engine works with, and the periodic reachability checks behind /ready.
// The engine receives a store_set and never builds a client itself.
#include "config/config.hpp"
#include "health/readiness.hpp"
#include "store/destination.hpp"
#include "store/object_listing.hpp"
#include "store/source.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/thread_pool.hpp>

#include <memory>
#include <span>
#include <string>

namespace archie::store {

class store_set {
 public:
  /// Throws std::runtime_error naming the store or route that cannot be used.
  store_set(boost::asio::any_io_executor io, boost::asio::thread_pool& blocking, const config::config& cfg);
  ~store_set();

  /// The source for an S3 store; throws std::out_of_range for a store that cannot be a source.
  source& source_for(const std::string& store);
  destination& destination_for(const std::string& store);
  /// A paged listing of bucket/prefix in any configured store; throws std::out_of_range for
  /// an unknown store.
  std::unique_ptr<object_listing> list(const std::string& store, const std::string& bucket,
                                       const std::string& prefix);

  /// One check per store and bucket used by a route (HEAD bucket, or the fs root).
  /// Reads exactly into.size() bytes of bucket/key from `offset` in any configured store
  /// (content comparison); `if_match` (S3 only, may be empty) pins the version.
  async_result<done> read(const std::string& store, const std::string& bucket, const std::string& key,
                          std::span<std::byte> into, std::uint64_t offset, const std::string& if_match);

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
