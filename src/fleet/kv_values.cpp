#include "fleet/kv_values.hpp"

#include "queue/nats_error.hpp"

#include <memory>

namespace archie::fleet {

std::vector<std::string> read_all_values(jsCtx* js, const std::string& bucket) {
  std::vector<std::string> out;
  kvStore* raw = nullptr;
  natsStatus s = js_KeyValue(&raw, js, bucket.c_str());
  if (s == NATS_NOT_FOUND) return out;
  if (s != NATS_OK) throw queue::nats_error("bind to key-value bucket " + bucket, s);
  std::unique_ptr<kvStore, decltype(&kvStore_Destroy)> kv(raw, &kvStore_Destroy);
  kvKeysList keys{};
  s = kvStore_Keys(&keys, kv.get(), nullptr);
  if (s == NATS_NOT_FOUND) return out;  // no keys
  if (s != NATS_OK) throw queue::nats_error("list keys of " + bucket, s);
  std::unique_ptr<kvKeysList, decltype(&kvKeysList_Destroy)> listed(&keys, &kvKeysList_Destroy);
  for (int i = 0; i < keys.Count; ++i) {
    kvEntry* e = nullptr;
    if (kvStore_Get(&e, kv.get(), keys.Keys[i]) != NATS_OK) continue;  // expired since the listing
    std::unique_ptr<kvEntry, decltype(&kvEntry_Destroy)> entry(e, &kvEntry_Destroy);
    const void* value = kvEntry_Value(e);
    const int len = kvEntry_ValueLen(e);
    if (value && len > 0) out.emplace_back(static_cast<const char*>(value), static_cast<std::size_t>(len));
  }
  return out;
}

}  // namespace archie::fleet
