#pragma once
// One NATS connection with a JetStream context, configured from [nats]: server list, auth,
// TLS, and reconnection forever with capped exponential backoff. Its state feeds /ready and
// the archie_nats_connected metric.
#include "config/config.hpp"

#include <nats/nats.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

namespace archie::queue {

class nats_connection {
 public:
  /// Connects (blocking: call from the blocking pool). Throws nats_error naming the servers.
  static std::unique_ptr<nats_connection> connect(const config::nats_config& cfg);
  ~nats_connection();
  nats_connection(const nats_connection&) = delete;
  nats_connection& operator=(const nats_connection&) = delete;

  natsConnection* raw() const { return conn_; }
  jsCtx* jetstream() const { return js_; }
  bool connected() const { return connected_.load(std::memory_order_relaxed); }
  /// "connected to nats://..." / "disconnected since ..." for /ready.
  std::string state_text() const;
  /// Flushes pending acks and closes; blocking.
  void close();

 private:
  nats_connection() = default;
  static void on_disconnected(natsConnection* nc, void* self);
  static void on_reconnected(natsConnection* nc, void* self);
  static void on_closed(natsConnection* nc, void* self);
  static int64_t reconnect_delay(natsConnection* nc, int attempts, void* self);

  natsOptions* opts_ = nullptr;
  natsConnection* conn_ = nullptr;
  jsCtx* js_ = nullptr;
  std::atomic<bool> connected_{false};
  std::atomic<bool> closing_{false};
  std::atomic<bool> closed_{false};  ///< set by on_closed, the last callback that touches this
  std::chrono::milliseconds reconnect_base_{1000};
  std::chrono::milliseconds reconnect_max_{30000};
};

}  // namespace archie::queue
