#include "queue/nats_connection.hpp"

#include "config/url_redaction.hpp"

#include "log/logger.hpp"
#include "metrics/registry.hpp"
#include "queue/nats_error.hpp"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <thread>
#include <vector>

namespace archie::queue {
namespace {

prometheus::Gauge& connected_gauge() {
  static auto& g = prometheus::BuildGauge()
                       .Name("archie_nats_connected")
                       .Help("1 while the NATS connection is up, 0 otherwise")
                       .Register(metrics::registry())
                       .Add({});
  return g;
}

prometheus::Counter& reconnects_counter() {
  static auto& c = prometheus::BuildCounter()
                       .Name("archie_nats_reconnects_total")
                       .Help("Times the NATS connection was re-established after a loss")
                       .Register(metrics::registry())
                       .Add({});
  return c;
}

void check(natsStatus s, std::string_view what) {
  if (s != NATS_OK) throw nats_error(what, s);
}

std::string current_url(natsConnection* nc) {
  char buf[256] = {0};
  if (natsConnection_GetConnectedUrl(nc, buf, sizeof buf) == NATS_OK) return config::redact_userinfo(buf);
  return {};
}

}  // namespace

std::unique_ptr<nats_connection> nats_connection::connect(const config::nats_config& cfg) {
  std::unique_ptr<nats_connection> self(new nats_connection());
  self->reconnect_base_ = cfg.reconnect_wait;
  self->reconnect_max_ = cfg.reconnect_wait_max;
  check(natsOptions_Create(&self->opts_), "nats options");
  natsOptions* o = self->opts_;

  std::vector<const char*> urls;
  for (const auto& u : cfg.urls) urls.push_back(u.c_str());
  check(natsOptions_SetServers(o, urls.data(), static_cast<int>(urls.size())), "nats.urls");
  check(natsOptions_SetName(o, cfg.name.c_str()), "nats.name");
  check(natsOptions_SetTimeout(o, cfg.connect_timeout.count()), "nats.connect_timeout");
  // Without SendAsap every ack and fetch waits ~1 ms for nats.c's flusher (measured: batch-1
  // fetch+ack capped near 1,000 msg/s).
  check(natsOptions_SetSendAsap(o, true), "nats send-asap");
  // Reconnect forever: a NATS outage only delays work, it must never end the worker.
  check(natsOptions_SetMaxReconnect(o, -1), "nats max reconnect");
  check(natsOptions_SetCustomReconnectDelay(o, &nats_connection::reconnect_delay, self.get()), "nats reconnect delay");
  check(natsOptions_SetReconnectBufSize(o, 8 * 1024 * 1024), "nats reconnect buffer");
  check(natsOptions_SetDisconnectedCB(o, &nats_connection::on_disconnected, self.get()), "nats callbacks");
  check(natsOptions_SetReconnectedCB(o, &nats_connection::on_reconnected, self.get()), "nats callbacks");
  check(natsOptions_SetClosedCB(o, &nats_connection::on_closed, self.get()), "nats callbacks");

  if (!cfg.user.empty())
    check(natsOptions_SetUserInfo(o, cfg.user.c_str(), cfg.password.reveal().c_str()), "nats.user");
  if (!cfg.token.empty()) {
    self->token_ = std::make_unique<config::secret_file_watch>(cfg.token);
    check(natsOptions_SetTokenHandler(o, &nats_connection::provide_token, self.get()), "nats.token");
  }
  if (!cfg.creds_file.empty())
    check(natsOptions_SetUserCredentialsFromFiles(o, cfg.creds_file.c_str(), nullptr), "nats.creds_file");
  if (!cfg.nkey_seed_file.empty())
    check(natsOptions_SetNKeyFromSeed(o, nullptr, cfg.nkey_seed_file.c_str()), "nats.nkey_seed_file");

  bool tls = cfg.tls.enabled;
  for (const auto& u : cfg.urls) tls = tls || u.rfind("tls://", 0) == 0;
  if (tls) {
    check(natsOptions_SetSecure(o, true), "nats.tls");
    if (!cfg.tls.ca_file.empty()) check(natsOptions_LoadCATrustedCertificates(o, cfg.tls.ca_file.c_str()), "nats.tls.ca_file");
    if (!cfg.tls.cert_file.empty())
      check(natsOptions_LoadCertificatesChain(o, cfg.tls.cert_file.c_str(), cfg.tls.key_file.c_str()), "nats.tls.cert_file");
    if (!cfg.tls.verify) {
      log::warn("NATS TLS certificate verification is disabled (nats.tls.verify = false)");
      check(natsOptions_SkipServerVerification(o, true), "nats.tls.verify");
    }
  }

  std::string servers;
  for (const auto& u : cfg.urls) servers += (servers.empty() ? "" : ",") + config::redact_userinfo(u);
  natsStatus s = natsConnection_Connect(&self->conn_, o);
  if (s != NATS_OK) throw nats_error("connect to NATS at " + servers, s);
  s = natsConnection_JetStream(&self->js_, self->conn_, nullptr);
  if (s != NATS_OK) throw nats_error("JetStream context", s);
  self->connected_ = true;
  connected_gauge().Set(1);
  log::info("connected to NATS", {{"url", current_url(self->conn_)}});
  return self;
}

nats_connection::~nats_connection() {
  close();  // waits for nats.c's closed callback
  if (js_) jsCtx_Destroy(js_);
  if (conn_) natsConnection_Destroy(conn_);
  if (opts_) natsOptions_Destroy(opts_);
}

void nats_connection::close() {
  if (!conn_ || closing_.exchange(true)) return;
  // Acks are fire-and-forget publishes: flush them before the socket goes away.
  natsConnection_FlushTimeout(conn_, 2000);
  natsConnection_Close(conn_);
  // nats.c reports the close on its own thread, later: wait for it, or the callback would
  // run on a destroyed object.
  std::unique_lock lock(closed_mutex_);
  closed_cv_.wait_for(lock, std::chrono::seconds(5), [this] { return closed_reported_; });
}

std::string nats_connection::state_text() const {
  if (connected()) return "connected to " + current_url(conn_);
  return closing_ ? "closed" : "disconnected; reconnecting";
}

void nats_connection::on_disconnected(natsConnection*, void* self) {
  auto* c = static_cast<nats_connection*>(self);
  c->connected_ = false;
  connected_gauge().Set(0);
  if (!c->closing_) log::warn("NATS connection lost; reconnecting");
}

void nats_connection::on_reconnected(natsConnection* nc, void* self) {
  static_cast<nats_connection*>(self)->connected_ = true;
  connected_gauge().Set(1);
  reconnects_counter().Increment();
  log::info("NATS connection re-established", {{"url", current_url(nc)}});
}

void nats_connection::on_closed(natsConnection*, void* self) {
  auto* c = static_cast<nats_connection*>(self);
  c->connected_ = false;
  connected_gauge().Set(0);
  std::lock_guard lock(c->closed_mutex_);
  c->closed_reported_ = true;
  c->closed_cv_.notify_all();
}

int64_t nats_connection::reconnect_delay(natsConnection*, int attempts, void* self) {
  auto* c = static_cast<nats_connection*>(self);
  // attempts counts passes over the whole server list; back off per pass, capped.
  int shift = std::min(std::max(attempts - 1, 0), 16);
  int64_t ms = std::min<int64_t>(c->reconnect_base_.count() << shift, c->reconnect_max_.count());
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return ms / 2 + static_cast<int64_t>(rng() % static_cast<uint64_t>(ms / 2 + 1));
}

// Called by nats.c on its connection thread before each CONNECT; the returned string must
// stay valid until the next call, so it lives in the connection object.
const char* nats_connection::provide_token(void* self) {
  auto* c = static_cast<nats_connection*>(self);
  c->token_->check_now();
  c->token_sent_ = c->token_->value().reveal();
  return c->token_sent_.c_str();
}

}  // namespace archie::queue
