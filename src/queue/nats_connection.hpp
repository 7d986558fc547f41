#pragma once
// One NATS connection with a JetStream context, configured from [nats]: server list, auth,
// TLS, and reconnection forever with capped exponential backoff. Its state feeds /ready and
// the archie_nats_connected metric.
#include "config/config.hpp"
#include "config/secret_file.hpp"

#include <nats/nats.h>

#include <atomic>
#include <condition_variable>
#include <chrono>
#include <memory>
#include <mutex>
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
  static const char* provide_token(void* self);

  natsOptions* opts_ = nullptr;
  natsConnection* conn_ = nullptr;
  jsCtx* js_ = nullptr;
  std::atomic<bool> connected_{false};
  std::atomic<bool> closing_{false};
  std::mutex closed_mutex_;
  std::condition_variable closed_cv_;
  bool closed_reported_ = false;  ///< nats.c's closed callback has run
  std::chrono::milliseconds reconnect_base_{1000};
  std::chrono::milliseconds reconnect_max_{30000};
  // The token is handed to nats.c at every (re)connect, read again from token_file if that
  // changed: a rotated token applies from the next reconnect.
  std::unique_ptr<config::secret_file_watch> token_;
  std::string token_sent_;
};

}  // namespace archie::queue
