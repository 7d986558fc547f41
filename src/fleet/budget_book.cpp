#include "fleet/budget_book.hpp"

#include "metrics/registry.hpp"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>

#include <algorithm>
#include <set>

namespace archie::fleet {

namespace {

struct budget_metrics {
  prometheus::Family<prometheus::Gauge>& limit;        ///< {store,budget}: this worker's share
  prometheus::Gauge& workers;                          ///< live workers the shares come from
  prometheus::Family<prometheus::Counter>& waited;     ///< {store,budget}: seconds paced
  prometheus::Family<prometheus::Counter>& deferred;   ///< {store}: records handed back

  static budget_metrics& get() {
    static budget_metrics m{
        prometheus::BuildGauge()
            .Name("archie_budget_limit")
            .Help("This worker's share of a store's fleet-wide budget: bytes/s (bandwidth), requests/s "
                  "(requests) or concurrent transfers (transfers); 0 means none at the moment")
            .Register(metrics::registry()),
        prometheus::BuildGauge()
            .Name("archie_budget_workers")
            .Help("Live workers in the registry that the budgets are shared among")
            .Register(metrics::registry())
            .Add({}),
        prometheus::BuildCounter()
            .Name("archie_budget_wait_seconds_total")
            .Help("Seconds requests and body bytes waited for a store's budget (summed over concurrent waits)")
            .Register(metrics::registry()),
        prometheus::BuildCounter()
            .Name("archie_transfers_deferred_total")
            .Help("Records handed back to the queue (nak with a short delay) because a destination store "
                  "had no free transfer slot on this worker")
            .Register(metrics::registry()),
    };
    return m;
  }
};

// A body chunk waits for about 50 ms of the budget: fine enough that the rate holds over
// a second, coarse enough that pacing costs little.
constexpr double chunk_seconds = 0.05;
constexpr std::size_t min_chunk = 16 * 1024;
constexpr std::size_t max_chunk = 1024 * 1024;

}  // namespace

std::size_t count_share(std::int64_t total, fleet_position p) {
  if (total <= 0) return 0;
  const std::size_t workers = std::max<std::size_t>(1, p.workers);
  const auto t = static_cast<std::size_t>(total);
  return t / workers + (p.rank < t % workers ? 1 : 0);
}

store_budget::store_budget(std::string store, config::store_budget fleet, std::size_t fair_cap)
    : store_(std::move(store)), fleet_(std::move(fleet)), fair_cap_(fair_cap) {
  apply(fleet_position{}, std::chrono::system_clock::now());
}

void store_budget::apply(fleet_position p, std::chrono::system_clock::time_point now) {
  auto& m = budget_metrics::get();
  const double workers = static_cast<double>(std::max<std::size_t>(1, p.workers));
  if (fleet_.bandwidth.limits()) {
    bandwidth_.set_rate(static_cast<double>(fleet_.bandwidth.at(now)) / workers);
    m.limit.Add({{"store", store_}, {"budget", "bandwidth"}}).Set(bandwidth_.rate());
  }
  if (fleet_.requests_per_second > 0) {
    requests_.set_rate(fleet_.requests_per_second / workers);
    m.limit.Add({{"store", store_}, {"budget", "requests"}}).Set(requests_.rate());
  }
  if (fleet_.transfers > 0) {
    fleet_share_ = count_share(fleet_.transfers, p);
    m.limit.Add({{"store", store_}, {"budget", "transfers"}}).Set(static_cast<double>(fleet_share_));
  }
  transfers_.set_limit(std::min(fleet_share_, fair_cap_));
}

boost::asio::awaitable<void> store_budget::before_request() {
  if (!requests_.limited()) co_return;
  const double waited = co_await requests_.acquire(1);
  if (waited > 0)
    budget_metrics::get().waited.Add({{"store", store_}, {"budget", "requests"}}).Increment(waited);
}

boost::asio::awaitable<void> store_budget::before_body_bytes(std::size_t bytes) {
  if (!bandwidth_.limited()) co_return;
  const double waited = co_await bandwidth_.acquire(static_cast<double>(bytes));
  if (waited > 0)
    budget_metrics::get().waited.Add({{"store", store_}, {"budget", "bandwidth"}}).Increment(waited);
}

std::size_t store_budget::body_chunk() const {
  if (!bandwidth_.limited()) return 0;
  return std::clamp(static_cast<std::size_t>(bandwidth_.rate() * chunk_seconds), min_chunk, max_chunk);
}

async::slot_gate* store_budget::transfers() {
  return fleet_.transfers > 0 || fair_share() ? &transfers_ : nullptr;
}

budget_book::budget_book(const config::config& cfg) {
  // How many routes write to each store: one missing from some route could hold slots that
  // those routes' destinations need, so it gets a fair cap.
  std::map<std::string, std::size_t> routes_writing;
  for (const auto& r : cfg.routes) {
    std::set<std::string> mine;
    for (const auto& d : r.destinations) mine.insert(d.store);
    for (const auto& s : mine) ++routes_writing[s];
  }
  const auto concurrency = static_cast<std::size_t>(std::max<std::int64_t>(1, cfg.worker.concurrency));
  for (const auto& [name, budget] : cfg.budgets) {
    auto it = routes_writing.find(name);
    const bool destination = it != routes_writing.end();
    const bool fair = destination && it->second < cfg.routes.size();
    if (!budget.any() && !fair) continue;
    // Records of such a store step aside when slow (queue/pull_consumer.hpp); it still
    // holds no more than `concurrency` of them.
    stores_.emplace(name, std::make_shared<store_budget>(name, budget, fair ? concurrency : async::slot_gate::unlimited));
  }
  budget_metrics::get().workers.Set(1);
}

std::shared_ptr<http::send_budget> budget_book::send_budget_for(const std::string& store) const {
  auto it = stores_.find(store);
  if (it == stores_.end()) return nullptr;
  const auto& b = it->second->fleet();
  if (!b.bandwidth.limits() && b.requests_per_second <= 0) return nullptr;
  return it->second;
}

async::slot_gate* budget_book::gate_for_record(const std::string& store) const {
  auto it = stores_.find(store);
  if (it == stores_.end()) return nullptr;
  return it->second->transfers();
}

bool budget_book::shares_slots(const std::string& store) const {
  auto it = stores_.find(store);
  return it != stores_.end() && it->second->fair_share();
}

void budget_book::count_deferred(const std::string& store) {
  budget_metrics::get().deferred.Add({{"store", store}}).Increment();
}

void budget_book::apply(fleet_position p) {
  const auto now = std::chrono::system_clock::now();
  for (auto& [name, b] : stores_) b->apply(p, now);
  budget_metrics::get().workers.Set(static_cast<double>(std::max<std::size_t>(1, p.workers)));
}

}  // namespace archie::fleet
