#include "fleet/worker_registry.hpp"

#include "fleet/kv_values.hpp"

#include "archie_version.hpp"
#include "async/run_blocking.hpp"
#include "log/logger.hpp"
#include "metrics/registry.hpp"
#include "queue/nats_error.hpp"

#include <prometheus/counter.h>

#include <unistd.h>

#include <climits>

namespace archie::fleet {
namespace asio = boost::asio;
using queue::nats_error;

namespace {

prometheus::Counter& registry_errors() {
  static auto& c = prometheus::BuildCounter()
                       .Name("archie_registry_errors_total")
                       .Help("Failed writes of this worker's entry in the worker registry (fleet.registry_bucket)")
                       .Register(metrics::registry())
                       .Add({});
  return c;
}

std::string host_name() {
  char name[HOST_NAME_MAX + 1] = {};
  if (gethostname(name, sizeof name - 1) != 0) return "unknown";
  return name;
}

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

kvStore* open_registry(jsCtx* js, const config::fleet_config& cfg) {
  kvStore* kv = nullptr;
  natsStatus s = js_KeyValue(&kv, js, cfg.registry_bucket.c_str());
  if (s == NATS_OK) return kv;
  if (s != NATS_NOT_FOUND) throw nats_error("bind to key-value bucket " + cfg.registry_bucket, s);
  kvConfig kc;
  kvConfig_Init(&kc);
  kc.Bucket = cfg.registry_bucket.c_str();
  kc.Description = "archie workers (archie status)";
  kc.History = 1;
  kc.TTL = std::chrono::duration_cast<std::chrono::nanoseconds>(cfg.ttl).count();  // nats.c: nanoseconds
  kc.StorageType = js_MemoryStorage;  // a view of the present: nothing to keep across a restart
  s = js_CreateKeyValue(&kv, js, &kc);
  if (s != NATS_OK) throw nats_error("create key-value bucket " + cfg.registry_bucket, s);
  return kv;
}

std::vector<worker_entry> read_registry(jsCtx* js, const std::string& bucket) {
  std::vector<worker_entry> out;
  for (const auto& value : read_all_values(js, bucket))
    if (auto parsed = entry_from_json(value)) out.push_back(std::move(*parsed));
  return out;
}

worker_registry::worker_registry(asio::any_io_executor io, asio::thread_pool& blocking, jsCtx* js,
                                 config::fleet_config cfg)
    : blocking_(blocking),
      js_(js),
      cfg_(std::move(cfg)),
      loop_(io, cfg_.heartbeat) {
  entry_.host = host_name();
  entry_.pid = static_cast<std::int64_t>(getpid());
  entry_.id = worker_id(entry_.host, entry_.pid);
  entry_.version = ARCHIE_VERSION;
  entry_.started_unix = unix_now();
}

worker_registry::~worker_registry() {
  if (kv_) kvStore_Destroy(kv_);
}

void worker_registry::beat() {
  if (!kv_) kv_ = open_registry(js_, cfg_);
  const auto now = std::chrono::steady_clock::now();
  const worker_entry previous = entry_;
  const double seconds = sent_ ? std::chrono::duration<double>(now - last_beat_).count() : 0;
  fill_from_metrics(entry_, metrics::registry().Collect(), sent_ ? &previous : nullptr, seconds);
  entry_.updated_unix = unix_now();
  const std::string value = to_json(entry_);
  std::uint64_t revision = 0;
  natsStatus s = kvStore_Put(&revision, kv_, entry_.id.c_str(), value.data(), static_cast<int>(value.size()));
  if (s != NATS_OK) throw nats_error("put " + entry_.id + " in key-value bucket " + cfg_.registry_bucket, s);
  last_beat_ = now;
  sent_ = true;
  // The live workers, for the budgets' shares: the keys whose entries have not expired.
  kvKeysList keys{};
  s = kvStore_Keys(&keys, kv_, nullptr);
  if (s != NATS_OK && s != NATS_NOT_FOUND)  // not found: no keys (ours expired meanwhile)
    throw nats_error("list the keys of key-value bucket " + cfg_.registry_bucket, s);
  std::vector<std::string> ids;
  if (s == NATS_OK) ids.assign(keys.Keys, keys.Keys + keys.Count);
  kvKeysList_Destroy(&keys);
  position_ = fleet_position::from_keys(std::move(ids), entry_.id);
}

asio::awaitable<void> worker_registry::run() {
  bool failing = false;
  auto heartbeat_once = [&]() -> asio::awaitable<void> {
    try {
      auto heartbeat = [this] { beat(); };
      co_await async::run_blocking(blocking_, heartbeat);
      if (failing) log::info("worker registry writable again", {{"bucket", cfg_.registry_bucket}});
      failing = false;
    } catch (const std::exception& e) {
      registry_errors().Increment();
      // Once per outage; replication does not depend on it.
      if (!failing)
        log::warn("cannot write this worker's entry in the worker registry (archie status will not list it)",
                  {{"bucket", cfg_.registry_bucket}, {"error", e.what()}});
      failing = true;
    }
    if (listener_) listener_(position_);
  };
  co_await loop_.run(heartbeat_once);
}

asio::awaitable<void> worker_registry::stop() {
  co_await loop_.stop();
  if (!kv_) co_return;
  auto remove = [this] { kvStore_Delete(kv_, entry_.id.c_str()); };  // best effort: the TTL is the fallback
  co_await async::run_blocking(blocking_, remove);
}

}  // namespace archie::fleet
