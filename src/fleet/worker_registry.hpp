#pragma once
// The worker registry: a JetStream key-value bucket (fleet.registry_bucket) in which every
// `archie run` keeps one entry (fleet/worker_entry.hpp) under its worker ID, written again
// every fleet.heartbeat. The bucket's TTL (fleet.ttl) drops the entry of a worker that died
// without a word; one that stops cleanly deletes its own. `archie status` reads them all.
// The registry is a view, never a dependency: a bucket that cannot be created or written is
// logged and counted (archie_registry_errors_total) and replication goes on.
#include "async/periodic_loop.hpp"
#include "config/config.hpp"
#include "fleet/fleet_position.hpp"
#include "fleet/worker_entry.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>

#include <nats/nats.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace archie::fleet {

/// Binds to the bucket, creating it (TTL = ttl, one value per key) when missing. Blocking;
/// throws nats_error.
kvStore* open_registry(jsCtx* js, const config::fleet_config& cfg);
/// Every entry of the bucket that parses, in key order. Blocking; throws nats_error (a
/// missing bucket is an empty fleet, not an error).
std::vector<worker_entry> read_registry(jsCtx* js, const std::string& bucket);

class worker_registry {
 public:
  worker_registry(boost::asio::any_io_executor io, boost::asio::thread_pool& blocking, jsCtx* js,
                  config::fleet_config cfg);
  ~worker_registry();
  worker_registry(const worker_registry&) = delete;
  worker_registry& operator=(const worker_registry&) = delete;

  /// The heartbeat loop; co_spawn it on the io executor.
  boost::asio::awaitable<void> run();
  /// Ends run() and deletes this worker's entry (the fleet sees it gone at once).
  boost::asio::awaitable<void> stop();
  const std::string& id() const { return entry_.id; }
  /// Called on the io executor after every heartbeat with this worker's place in the fleet
  /// (the last one known when the registry could not be read). Set before run().
  void on_position(std::function<void(fleet_position)> listener) { listener_ = std::move(listener); }

 private:
  void beat();  ///< blocking: one heartbeat (opens the bucket first if need be)

  boost::asio::thread_pool& blocking_;
  jsCtx* js_;
  config::fleet_config cfg_;
  kvStore* kv_ = nullptr;
  worker_entry entry_;
  std::chrono::steady_clock::time_point last_beat_{};
  bool sent_ = false;
  fleet_position position_;
  std::function<void(fleet_position)> listener_;
  async::periodic_loop loop_;
};

}  // namespace archie::fleet
