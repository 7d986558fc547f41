#include "fleet/run_summaries.hpp"

#include "fleet/kv_values.hpp"
#include "queue/nats_error.hpp"
#include "store/json_fields.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <memory>

namespace archie::fleet {
namespace json = boost::json;
using queue::nats_error;

namespace {


kvStore* open_runs(jsCtx* js, const std::string& bucket) {
  kvStore* kv = nullptr;
  natsStatus s = js_KeyValue(&kv, js, bucket.c_str());
  if (s == NATS_OK) return kv;
  if (s != NATS_NOT_FOUND) throw nats_error("bind to key-value bucket " + bucket, s);
  kvConfig kc;
  kvConfig_Init(&kc);
  kc.Bucket = bucket.c_str();
  kc.Description = "archie: the last verify and backfill of each route (archie status)";
  kc.History = 1;
  kc.StorageType = js_FileStorage;  // outlives a NATS restart, unlike the registry
  s = js_CreateKeyValue(&kv, js, &kc);
  if (s != NATS_OK) throw nats_error("create key-value bucket " + bucket, s);
  return kv;
}

}  // namespace

std::string run_key(const run_summary& s) { return s.command + ".route-" + std::to_string(s.route); }

std::string to_json(const run_summary& s) {
  return json::serialize(json::object{{"command", s.command},
                                      {"route", s.route},
                                      {"source", s.source},
                                      {"finished", s.finished_unix},
                                      {"elapsed_seconds", s.elapsed_seconds},
                                      {"complete", s.complete},
                                      {"compared", s.compared},
                                      {"missing", s.missing},
                                      {"different", s.different},
                                      {"extra", s.extra},
                                      {"result", s.result},
                                      {"host", s.host}});
}

std::optional<run_summary> run_summary_from_json(std::string_view text) {
  const auto parsed = store::parse_json_object(text);
  if (!parsed) return std::nullopt;
  const auto& o = *parsed;
  run_summary s;
  s.command = store::json_string(o, "command");
  s.route = static_cast<std::int64_t>(store::json_number(o, "route"));
  if (s.command.empty() || s.route <= 0) return std::nullopt;
  s.source = store::json_string(o, "source");
  s.finished_unix = static_cast<std::int64_t>(store::json_number(o, "finished"));
  s.elapsed_seconds = store::json_number(o, "elapsed_seconds");
  auto complete = o.find("complete");
  s.complete = complete == o.end() || !complete->value().is_bool() || complete->value().as_bool();
  s.compared = static_cast<std::uint64_t>(store::json_number(o, "compared"));
  s.missing = static_cast<std::uint64_t>(store::json_number(o, "missing"));
  s.different = static_cast<std::uint64_t>(store::json_number(o, "different"));
  s.extra = static_cast<std::uint64_t>(store::json_number(o, "extra"));
  s.result = store::json_string(o, "result");
  s.host = store::json_string(o, "host");
  return s;
}

void record_runs(jsCtx* js, const std::string& bucket, const std::vector<run_summary>& runs) {
  std::unique_ptr<kvStore, decltype(&kvStore_Destroy)> kv(open_runs(js, bucket), &kvStore_Destroy);
  for (const auto& r : runs) {
    const std::string key = run_key(r), value = to_json(r);
    std::uint64_t revision = 0;
    natsStatus s = kvStore_Put(&revision, kv.get(), key.c_str(), value.data(), static_cast<int>(value.size()));
    if (s != NATS_OK) throw nats_error("put " + key + " in key-value bucket " + bucket, s);
  }
}

std::vector<run_summary> read_runs(jsCtx* js, const std::string& bucket) {
  std::vector<run_summary> out;
  for (const auto& value : read_all_values(js, bucket))
    if (auto r = run_summary_from_json(value)) out.push_back(std::move(*r));
  std::sort(out.begin(), out.end(), [](const run_summary& a, const run_summary& b) {
    return a.route != b.route ? a.route < b.route : a.command < b.command;
  });
  return out;
}

}  // namespace archie::fleet
