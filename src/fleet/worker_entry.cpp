#include "fleet/worker_entry.hpp"

#include "store/json_fields.hpp"

#include <boost/json.hpp>

#include <cctype>

namespace archie::fleet {
namespace json = boost::json;

namespace {

std::string label(const prometheus::ClientMetric& m, std::string_view name) {
  for (const auto& l : m.label)
    if (l.name == name) return l.value;
  return {};
}

bool failed_status(const std::string& status) {
  // 0: no answer. 404 and 412 are answers archie asks for (absent, changed), not failures.
  return status == "0" || (status.size() == 3 && status >= "400" && status != "404" && status != "412");
}


}  // namespace

void fill_from_metrics(worker_entry& entry, const std::vector<prometheus::MetricFamily>& families,
                       const worker_entry* previous, double seconds) {
  entry.outcomes.clear();
  entry.stores.clear();
  for (const auto& family : families) {
    const std::string& name = family.name;
    for (const auto& m : family.metric) {
      if (name == "archie_transfers_in_flight") {
        entry.transfers_in_flight = m.gauge.value;
      } else if (name == "archie_queue_in_flight_messages") {
        entry.messages_in_flight += m.gauge.value;
      } else if (name == "archie_messages_processed_total") {
        entry.outcomes[label(m, "state") + "/" + label(m, "code")] += m.counter.value;
      } else if (name == "archie_destination_bytes_total") {
        entry.stores[label(m, "destination")].bytes += m.counter.value;
      } else if (name == "archie_budget_wait_seconds_total") {
        entry.stores[label(m, "store")].throttled_seconds += m.counter.value;
      } else if (name == "archie_transfers_deferred_total") {
        entry.stores[label(m, "store")].deferred += m.counter.value;
      } else if (name == "archie_store_request_duration_seconds") {
        auto& s = entry.stores[label(m, "store")];
        const auto count = static_cast<double>(m.histogram.sample_count);
        s.requests += count;
        if (failed_status(label(m, "status"))) s.failed_requests += count;
      }
    }
  }
  if (!previous || seconds <= 0) return;
  for (auto& [store, s] : entry.stores) {
    auto it = previous->stores.find(store);
    const destination_activity none;
    const destination_activity& before = it == previous->stores.end() ? none : it->second;
    s.bytes_per_second = s.bytes >= before.bytes ? (s.bytes - before.bytes) / seconds : 0;
    s.failed_per_second =
        s.failed_requests >= before.failed_requests ? (s.failed_requests - before.failed_requests) / seconds : 0;
    s.throttled_per_second = s.throttled_seconds >= before.throttled_seconds
                                 ? (s.throttled_seconds - before.throttled_seconds) / seconds
                                 : 0;
  }
}

std::string to_json(const worker_entry& e) {
  json::object o;
  o["id"] = e.id;
  o["host"] = e.host;
  o["pid"] = e.pid;
  o["version"] = e.version;
  o["started"] = e.started_unix;
  o["updated"] = e.updated_unix;
  o["transfers_in_flight"] = e.transfers_in_flight;
  o["messages_in_flight"] = e.messages_in_flight;
  json::object outcomes;
  for (const auto& [k, v] : e.outcomes) outcomes[k] = v;
  o["outcomes"] = std::move(outcomes);
  json::object stores;
  for (const auto& [k, s] : e.stores)
    stores[k] = json::object{{"bytes", s.bytes}, {"bytes_per_second", s.bytes_per_second},
                             {"requests", s.requests}, {"failed_requests", s.failed_requests},
                             {"failed_per_second", s.failed_per_second},
                             {"throttled_seconds", s.throttled_seconds},
                             {"throttled_per_second", s.throttled_per_second}, {"deferred", s.deferred}};
  o["stores"] = std::move(stores);
  return json::serialize(o);
}

std::optional<worker_entry> entry_from_json(std::string_view text) {
  const auto parsed = store::parse_json_object(text);
  if (!parsed) return std::nullopt;
  const auto& o = *parsed;
  worker_entry e;
  e.id = store::json_string(o, "id");
  if (e.id.empty()) return std::nullopt;
  e.host = store::json_string(o, "host");
  e.pid = static_cast<std::int64_t>(store::json_number(o, "pid"));
  e.version = store::json_string(o, "version");
  e.started_unix = static_cast<std::int64_t>(store::json_number(o, "started"));
  e.updated_unix = static_cast<std::int64_t>(store::json_number(o, "updated"));
  e.transfers_in_flight = store::json_number(o, "transfers_in_flight");
  e.messages_in_flight = store::json_number(o, "messages_in_flight");
  if (auto it = o.find("outcomes"); it != o.end() && it->value().is_object())
    for (const auto& kv : it->value().as_object())
      e.outcomes[std::string(kv.key())] = kv.value().is_number() ? kv.value().to_number<double>() : 0;
  if (auto it = o.find("stores"); it != o.end() && it->value().is_object())
    for (const auto& kv : it->value().as_object()) {
      if (!kv.value().is_object()) continue;
      const auto& s = kv.value().as_object();
      auto n = [&s](std::string_view name) { return store::json_number(s, name); };
      e.stores[std::string(kv.key())] =
          destination_activity{n("bytes"),     n("bytes_per_second"),  n("requests"),
                               n("failed_requests"), n("failed_per_second"), n("throttled_seconds"),
                               n("throttled_per_second"), n("deferred")};
    }
  return e;
}

std::string worker_id(const std::string& host, std::int64_t pid) {
  std::string id = (host.empty() ? std::string("worker") : host) + "-" + std::to_string(pid);
  for (auto& c : id)  // a key takes letters, digits and - / _ = .
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '=') c = '_';
  return id;
}

}  // namespace archie::fleet
