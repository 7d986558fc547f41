// A worker's registry entry from its metrics, and back from JSON, without NATS.
#include "fleet/worker_entry.hpp"

#include <doctest/doctest.h>

using namespace archie;

namespace {

prometheus::ClientMetric counter(double value, prometheus::ClientMetric::Label a = {}, prometheus::ClientMetric::Label b = {}) {
  prometheus::ClientMetric m;
  if (!a.name.empty()) m.label.push_back(a);
  if (!b.name.empty()) m.label.push_back(b);
  m.counter.value = value;
  return m;
}

prometheus::ClientMetric requests(const std::string& store, const std::string& status, std::uint64_t count) {
  prometheus::ClientMetric m;
  m.label = {{"store", store}, {"operation", "PutObject"}, {"status", status}};
  m.histogram.sample_count = count;
  return m;
}

prometheus::MetricFamily family(std::string name, std::vector<prometheus::ClientMetric> metrics) {
  prometheus::MetricFamily f;
  f.name = std::move(name);
  f.metric = std::move(metrics);
  return f;
}

std::vector<prometheus::MetricFamily> metrics_with(double bytes, std::uint64_t failed) {
  prometheus::ClientMetric in_flight;
  in_flight.gauge.value = 3;
  return {
      family("archie_transfers_in_flight", {in_flight}),
      family("archie_destination_bytes_total", {counter(bytes, {"destination", "dst"})}),
      family("archie_messages_processed_total",
             {counter(7, {"state", "ack"}, {"code", "replicated"}), counter(2, {"state", "term"}, {"code", "malformed"})}),
      family("archie_store_request_duration_seconds",
             {requests("dst", "200", 10), requests("dst", "404", 4), requests("dst", "503", failed),
              requests("dst", "0", 1)}),
  };
}

}  // namespace

TEST_CASE("a worker's entry holds its totals from the metrics, and rates over the last heartbeat") {
  fleet::worker_entry first;
  fleet::fill_from_metrics(first, metrics_with(1000, 2), nullptr, 0);
  CHECK(first.transfers_in_flight == 3);
  CHECK(first.outcomes.at("ack/replicated") == 7);
  CHECK(first.outcomes.at("term/malformed") == 2);
  CHECK(first.stores.at("dst").bytes == 1000);
  CHECK(first.stores.at("dst").requests == 17);
  CHECK(first.stores.at("dst").failed_requests == 3);  // the 503s and the unanswered one; not the 404s
  CHECK(first.stores.at("dst").bytes_per_second == 0);  // no earlier heartbeat
  fleet::worker_entry second;
  fleet::fill_from_metrics(second, metrics_with(6000, 4), &first, 5.0);
  CHECK(second.stores.at("dst").bytes_per_second == doctest::Approx(1000));
  CHECK(second.stores.at("dst").failed_per_second == doctest::Approx(0.4));
}

TEST_CASE("an entry survives its JSON form; anything else in the bucket is not an entry") {
  fleet::worker_entry e;
  e.id = fleet::worker_id("pod-7f9c.example", 42);
  e.host = "pod-7f9c.example";
  e.pid = 42;
  e.version = "0.1.0";
  e.started_unix = 1'800'000'000;
  e.updated_unix = 1'800'000'005;
  e.transfers_in_flight = 2;
  e.outcomes["ack/replicated"] = 12;
  e.stores["dst"] = {100, 20, 5, 1, 0.2};
  auto back = fleet::entry_from_json(fleet::to_json(e));
  REQUIRE(back);
  CHECK(back->id == "pod-7f9c_example-42");  // a key takes no dots here
  CHECK(back->started_unix == e.started_unix);
  CHECK(back->outcomes.at("ack/replicated") == 12);
  CHECK(back->stores.at("dst").failed_per_second == doctest::Approx(0.2));
  CHECK_FALSE(fleet::entry_from_json("not json"));
  CHECK_FALSE(fleet::entry_from_json("{\"host\": \"no id\"}"));
  CHECK_FALSE(fleet::entry_from_json("[1, 2]"));
}
