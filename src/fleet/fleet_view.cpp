#include "fleet/fleet_view.hpp"

#include "fleet/worker_registry.hpp"
#include "queue/dead_letters.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iomanip>
#include <sstream>

namespace archie::fleet {
namespace json = boost::json;

namespace {

std::string per_second(double n) {
  const double tenths = std::round(n * 10) / 10;
  std::string s = std::to_string(tenths);
  s.erase(s.find_last_not_of('0') + 1);
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

void find_problems(fleet_view& v) {
  const std::uint64_t outstanding =
      v.backlog.pending + static_cast<std::uint64_t>(std::max<std::int64_t>(0, v.backlog.ack_pending));
  if (v.workers.empty() && outstanding > 0)
    v.problems.push_back(std::to_string(outstanding) + (outstanding == 1 ? " message waits" : " messages wait") +
                         " and no worker is registered");
  for (const auto& [name, s] : v.stores)
    if (s.failed_per_second > 0)
      v.problems.push_back("store " + name + " is failing requests (" + per_second(s.failed_per_second) + "/s)");
  if (v.dead_letters && v.dead_letters->total > 0)
    v.problems.push_back(std::to_string(v.dead_letters->total) + (v.dead_letters->complete ? "" : "+") +
                         (v.dead_letters->total == 1 && v.dead_letters->complete ? " dead letter waits"
                                                                                 : " dead letters wait") +
                         " for an operator (archie dead-letters list)");
}

}  // namespace

fleet_view read_fleet_view(const config::config& cfg, jsCtx* js) {
  fleet_view v;
  const auto now = std::chrono::system_clock::now();
  v.read_unix = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  v.workers = read_registry(js, cfg.fleet.registry_bucket);
  v.backlog = queue::read_backlog(js, cfg.queue.stream.name, cfg.queue.consumer.durable, now);
  if (!cfg.queue.dead_letter_subject.empty()) {
    dead_letter_counts counts;
    queue::dead_letter_stream stream(js, cfg.queue);
    const queue::dead_letter_filter all;
    stream.for_each(all, [&](const queue::dead_letter& d) {
      ++counts.by_code[d.code.empty() ? "(none)" : d.code];
      if (++counts.total < max_dead_letters_counted) return true;
      counts.complete = false;
      return false;
    });
    v.dead_letters = std::move(counts);
  }
  for (const auto& w : v.workers) {
    for (const auto& [name, s] : w.stores) {
      auto& sum = v.stores[name];
      sum.bytes += s.bytes;
      sum.bytes_per_second += s.bytes_per_second;
      sum.requests += s.requests;
      sum.failed_requests += s.failed_requests;
      sum.failed_per_second += s.failed_per_second;
      sum.throttled_seconds += s.throttled_seconds;
      sum.throttled_per_second += s.throttled_per_second;
      sum.deferred += s.deferred;
    }
    for (const auto& [code, n] : w.outcomes) v.outcomes[code] += n;
  }
  for (const auto& [name, b] : cfg.budgets)
    if (b.any()) v.budgets[name] = describe_budget(b, now);
  try {
    v.runs = read_runs(js, cfg.fleet.runs_bucket);
  } catch (const std::exception&) {
    // A NATS user allowed the registry but not the runs bucket still sees the fleet.
  }
  find_problems(v);
  return v;
}

std::string describe_budget(const config::store_budget& b, std::chrono::system_clock::time_point now) {
  std::string out;
  auto add = [&out](const std::string& part) { out += (out.empty() ? "" : ", ") + part; };
  if (b.bandwidth.limits()) {
    const std::uint64_t rate = b.bandwidth.at(now);
    std::string part = rate ? "bandwidth " + human_bytes(static_cast<double>(rate)) + "/s" : "bandwidth unlimited now";
    if (b.bandwidth.steps().size() > 1) part += " (timetable " + b.bandwidth.describe() + ")";
    add(part);
  }
  if (b.requests_per_second > 0) add("requests " + per_second(b.requests_per_second) + "/s");
  if (b.transfers > 0) add("transfers " + std::to_string(b.transfers));
  return out;
}

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) {
    b /= 1024;
    ++u;
  }
  std::ostringstream os;
  os << std::fixed << std::setprecision(u == 0 ? 0 : 1) << b << " " << units[u];
  return os.str();
}

std::string human_wait_rate(double s) {
  if (s < 0.05) return "0";
  return per_second(s) + " s/s";
}

std::string human_age(std::int64_t seconds) {
  if (seconds < 0) seconds = 0;
  if (seconds < 120) return std::to_string(seconds) + "s";
  if (seconds < 7200) return std::to_string(seconds / 60) + "m";
  return std::to_string(seconds / 3600) + "h";
}

std::string fleet_view_json(const fleet_view& v) {
  json::object o;
  o["state"] = v.healthy() ? "healthy" : "degraded";
  o["read"] = v.read_unix;
  json::array problems;
  for (const auto& p : v.problems) problems.emplace_back(p);
  o["problems"] = std::move(problems);
  o["backlog"] = json::object{{"pending", v.backlog.pending},
                              {"ack_pending", v.backlog.ack_pending},
                              {"redelivered", v.backlog.redelivered},
                              {"oldest_unacked_age_seconds", v.backlog.oldest_unacked_age_seconds}};
  json::array workers;
  for (const auto& w : v.workers) workers.push_back(json::parse(to_json(w)));
  o["workers"] = std::move(workers);
  json::object stores;
  for (const auto& [name, s] : v.stores)
    stores[name] = json::object{{"bytes", s.bytes},
                                {"bytes_per_second", s.bytes_per_second},
                                {"requests", s.requests},
                                {"failed_requests", s.failed_requests},
                                {"failed_per_second", s.failed_per_second},
                                {"throttled_per_second", s.throttled_per_second},
                                {"deferred", s.deferred}};
  for (const auto& [name, text] : v.budgets) {
    auto& entry = stores[name];
    if (!entry.is_object()) entry = json::object{};
    entry.as_object()["budget"] = text;
  }
  o["stores"] = std::move(stores);
  json::array runs;
  for (const auto& r : v.runs) runs.push_back(json::parse(to_json(r)));
  o["runs"] = std::move(runs);
  json::object outcomes;
  for (const auto& [code, n] : v.outcomes) outcomes[code] = n;
  o["outcomes"] = std::move(outcomes);
  if (v.dead_letters) {
    json::object by_code;
    for (const auto& [code, n] : v.dead_letters->by_code) by_code[code] = n;
    o["dead_letters"] = json::object{
        {"total", v.dead_letters->total}, {"complete", v.dead_letters->complete}, {"by_code", std::move(by_code)}};
  } else {
    o["dead_letters"] = nullptr;
  }
  return json::serialize(o);
}

}  // namespace archie::fleet
