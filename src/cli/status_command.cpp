#include "cli/status_command.hpp"

#include "fleet/fleet_view.hpp"
#include "queue/nats_connection.hpp"
#include "service/exit_codes.hpp"

#include <unistd.h>

#include <chrono>
#include <iomanip>
#include <iostream>
#include <thread>

namespace archie::cli {
using fleet::fleet_view;
using fleet::human_age;
using fleet::human_bytes;
using namespace service;

namespace {

void print_text(const fleet_view& v, std::ostream& out) {
  const std::int64_t now = v.read_unix;
  out << "archie status: " << (v.healthy() ? "healthy" : "degraded") << "\n";
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
        << "RATE" << std::setw(12) << "REQUESTS" << std::setw(8) << "FAILED" << std::setw(11) << "THROTTLED"
        << std::setw(13) << "HANDED-BACK" << "BUDGET (FLEET)\n";
    for (const auto& [name, s] : v.stores) {
      auto budget = v.budgets.find(name);
      out << "  " << std::left << std::setw(20) << name << std::setw(14) << human_bytes(s.bytes) << std::setw(14)
          << (human_bytes(s.bytes_per_second) + "/s") << std::setw(12) << static_cast<std::int64_t>(s.requests)
          << std::setw(8) << static_cast<std::int64_t>(s.failed_requests) << std::setw(11)
          << fleet::human_wait_rate(s.throttled_per_second) << std::setw(13) << static_cast<std::int64_t>(s.deferred)
          << (budget == v.budgets.end() ? "none" : budget->second) << "\n";
    }
  }
  if (!v.outcomes.empty()) {
    out << "\nsettled (state/code):\n";
    for (const auto& [code, n] : v.outcomes) out << "  " << std::left << std::setw(40) << code << static_cast<std::int64_t>(n) << "\n";
  }
  if (!v.runs.empty()) {
    out << "\nlast verify / backfill:\n";
    for (const auto& r : v.runs)
      out << "  route " << r.route << " " << r.source << "  " << r.command << " "
          << human_age(now - r.finished_unix) << " ago: " << r.compared << " compared, " << r.missing
          << " missing, " << r.different << " different, " << r.extra << " extra; " << r.result
          << (r.complete ? "" : " (incomplete)") << "\n";
  }
  if (v.dead_letters) {
    out << "\ndead letters: " << v.dead_letters->total << (v.dead_letters->complete ? "" : "+") << "\n";
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
      fleet_view v = fleet::read_fleet_view(cfg, nats->jetstream());
      code = v.healthy() ? exit_ok : exit_failed;
      if (clear_screen) std::cout << "\x1b[H\x1b[2J";
      if (opts.json) std::cout << fleet::fleet_view_json(v) << "\n";
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
