#include "cli/status_command.hpp"

#include "fleet/worker_registry.hpp"
#include "queue/backlog_monitor.hpp"
#include "queue/dead_letters.hpp"
#include "queue/nats_connection.hpp"
#include "service/exit_codes.hpp"

#include <boost/json.hpp>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <thread>

namespace archie::cli {
namespace json = boost::json;
using namespace service;

namespace {

// Dead letters read to count them by code; a larger stream is reported as "at least".
constexpr std::uint64_t max_dead_letters_scanned = 10'000;

struct dead_letter_counts {
  std::uint64_t scanned = 0;
  bool complete = true;
  std::map<std::string, std::uint64_t> by_code;
};

struct fleet_view {
  std::vector<fleet::worker_entry> workers;
  queue::backlog_snapshot backlog;
  std::optional<dead_letter_counts> dead_letters;  ///< none without queue.dead_letter_subject
  std::map<std::string, fleet::destination_activity> stores;  ///< summed over the workers
  std::map<std::string, double> outcomes;                     ///< summed over the workers
  std::vector<std::string> problems;                          ///< why it is degraded
};

fleet_view read_view(const config::config& cfg, jsCtx* js) {
  fleet_view v;
  v.workers = fleet::read_registry(js, cfg.fleet.registry_bucket);
  v.backlog = queue::read_backlog(js, cfg.queue.stream.name, cfg.queue.consumer.durable,
                                  std::chrono::system_clock::now());
  if (!cfg.queue.dead_letter_subject.empty()) {
    dead_letter_counts counts;
    queue::dead_letter_stream stream(js, cfg.queue);
    queue::dead_letter_filter all;
    stream.for_each(all, [&](const queue::dead_letter& d) {
      ++counts.by_code[d.code.empty() ? "(none)" : d.code];
      if (++counts.scanned < max_dead_letters_scanned) return true;
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
    }
    for (const auto& [code, n] : w.outcomes) v.outcomes[code] += n;
  }
  const std::uint64_t outstanding = v.backlog.pending + static_cast<std::uint64_t>(std::max<std::int64_t>(0, v.backlog.ack_pending));
  if (v.workers.empty() && outstanding > 0)
    v.problems.push_back(std::to_string(outstanding) + " messages wait and no worker is registered");
  for (const auto& [name, s] : v.stores)
    if (s.failed_per_second > 0)
      v.problems.push_back("store " + name + " is failing requests (" + std::to_string(s.failed_per_second) + "/s)");
  if (v.dead_letters && v.dead_letters->scanned > 0)
    v.problems.push_back(std::to_string(v.dead_letters->scanned) + (v.dead_letters->complete ? "" : "+") +
                         " dead letters (archie dead-letters list)");
  return v;
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

std::string human_age(std::int64_t seconds) {
  if (seconds < 120) return std::to_string(seconds) + "s";
  if (seconds < 7200) return std::to_string(seconds / 60) + "m";
  return std::to_string(seconds / 3600) + "h";
}

json::object to_json(const fleet_view& v) {
  json::object o;
  o["state"] = v.problems.empty() ? "healthy" : "degraded";
  json::array problems;
  for (const auto& p : v.problems) problems.emplace_back(p);
  o["problems"] = std::move(problems);
  o["backlog"] = json::object{{"pending", v.backlog.pending},
                              {"ack_pending", v.backlog.ack_pending},
                              {"redelivered", v.backlog.redelivered},
                              {"oldest_unacked_age_seconds", v.backlog.oldest_unacked_age_seconds}};
  json::array workers;
  for (const auto& w : v.workers) workers.push_back(json::parse(fleet::to_json(w)));
  o["workers"] = std::move(workers);
  json::object stores;
  for (const auto& [name, s] : v.stores)
    stores[name] = json::object{{"bytes", s.bytes},
                                {"bytes_per_second", s.bytes_per_second},
                                {"requests", s.requests},
                                {"failed_requests", s.failed_requests},
                                {"failed_per_second", s.failed_per_second}};
  o["stores"] = std::move(stores);
  json::object outcomes;
  for (const auto& [code, n] : v.outcomes) outcomes[code] = n;
  o["outcomes"] = std::move(outcomes);
  if (v.dead_letters) {
    json::object by_code;
    for (const auto& [code, n] : v.dead_letters->by_code) by_code[code] = n;
    o["dead_letters"] = json::object{
        {"total", v.dead_letters->scanned}, {"complete", v.dead_letters->complete}, {"by_code", std::move(by_code)}};
  } else {
    o["dead_letters"] = nullptr;
  }
  return o;
}

void print_text(const fleet_view& v, std::ostream& out) {
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  out << "archie status: " << (v.problems.empty() ? "healthy" : "degraded") << "\n";
  for (const auto& p : v.problems) out << "  ! " << p << "\n";
  out << "\nbacklog: " << v.backlog.pending << " pending, " << v.backlog.ack_pending << " being handled, "
      << v.backlog.redelivered << " redelivered, oldest unacked "
      << human_age(static_cast<std::int64_t>(v.backlog.oldest_unacked_age_seconds)) << "\n";
  out << "\nworkers: " << v.workers.size() << "\n";
  if (!v.workers.empty())
    out << "  " << std::left << std::setw(32) << "WORKER" << std::setw(10) << "VERSION" << std::setw(8) << "UP"
        << std::setw(8) << "SEEN" << std::setw(11) << "TRANSFERS" << "MESSAGES\n";
  for (const auto& w : v.workers)
    out << "  " << std::left << std::setw(32) << w.id << std::setw(10) << w.version << std::setw(8)
        << human_age(now - w.started_unix) << std::setw(8) << (human_age(now - w.updated_unix) + " ago").substr(0, 7)
        << std::setw(11) << static_cast<std::int64_t>(w.transfers_in_flight)
        << static_cast<std::int64_t>(w.messages_in_flight) << "\n";
  if (!v.stores.empty()) {
    out << "\nstores:\n  " << std::left << std::setw(20) << "STORE" << std::setw(14) << "WRITTEN" << std::setw(14)
        << "RATE" << std::setw(12) << "REQUESTS" << "FAILED\n";
    for (const auto& [name, s] : v.stores)
      out << "  " << std::left << std::setw(20) << name << std::setw(14) << human_bytes(s.bytes) << std::setw(14)
          << (human_bytes(s.bytes_per_second) + "/s") << std::setw(12) << static_cast<std::int64_t>(s.requests)
          << static_cast<std::int64_t>(s.failed_requests) << "\n";
  }
  if (!v.outcomes.empty()) {
    out << "\nsettled (state/code):\n";
    for (const auto& [code, n] : v.outcomes) out << "  " << std::left << std::setw(40) << code << static_cast<std::int64_t>(n) << "\n";
  }
  if (v.dead_letters) {
    out << "\ndead letters: " << v.dead_letters->scanned << (v.dead_letters->complete ? "" : "+") << "\n";
    for (const auto& [code, n] : v.dead_letters->by_code) out << "  " << std::left << std::setw(40) << code << n << "\n";
  }
}

}  // namespace

int run_status(const config::config& cfg, const command_options& opts) {
  std::unique_ptr<queue::nats_connection> nats;
  try {
    nats = queue::nats_connection::connect(cfg.queue.nats);
  } catch (const std::exception& e) {
    std::cerr << "archie: " << e.what() << "\n";
    return exit_incomplete;
  }
  const bool clear_screen = opts.watch && isatty(STDOUT_FILENO);
  for (;;) {
    int code = exit_ok;
    try {
      fleet_view v = read_view(cfg, nats->jetstream());
      code = v.problems.empty() ? exit_ok : exit_failed;
      if (clear_screen) std::cout << "\x1b[H\x1b[2J";
      if (opts.json) std::cout << json::serialize(to_json(v)) << "\n";
      else print_text(v, std::cout);
      std::cout.flush();
    } catch (const std::exception& e) {
      std::cerr << "archie: " << e.what() << "\n";
      code = exit_incomplete;
    }
    if (!opts.watch) {
      nats->close();
      return code;
    }
    std::this_thread::sleep_for(std::chrono::seconds(2));
  }
}

}  // namespace archie::cli
