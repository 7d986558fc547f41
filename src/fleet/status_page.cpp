#include "fleet/status_page.hpp"

#include <cstdint>
#include <sstream>

namespace archie::fleet {
namespace {

std::string escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string whole(double n) { return std::to_string(static_cast<std::int64_t>(n)); }

constexpr const char* style =
    "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}"
    "h1{font-size:1.3em}h2{font-size:1.05em;margin-top:1.4em}"
    "table{border-collapse:collapse}td,th{padding:.2em .8em;text-align:left;border-bottom:1px solid #ddd}"
    "td.n,th.n{text-align:right}.healthy{color:#1a7f37}.degraded{color:#b35900}"
    "ul#problems{color:#b35900}small{color:#666}";

void head(std::ostringstream& out, int refresh, const std::string& title) {
  out << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      << "<meta http-equiv=\"refresh\" content=\"" << refresh << "\">"
      << "<meta name=\"viewport\" content=\"width=device-width\">"
      << "<link rel=\"icon\" href=\"data:,\">"  // no /favicon.ico request
      << "<title>" << escape(title) << "</title><style>"
      << style << "</style></head><body>";
}

}  // namespace

std::string render_status_page(const fleet_view& v) {
  const std::string state = v.healthy() ? "healthy" : "degraded";
  std::ostringstream out;
  head(out, status_page_refresh_seconds, "archie: " + state);
  out << "<main id=\"archie-status\" data-state=\"" << state << "\">";
  out << "<h1>archie replication: <span id=\"state\" class=\"" << state << "\">" << state << "</span></h1>";
  out << "<ul id=\"problems\">";
  for (const auto& p : v.problems) out << "<li>" << escape(p) << "</li>";
  out << "</ul>";

  out << "<h2>Backlog</h2><p><span id=\"backlog-pending\">" << v.backlog.pending << "</span> pending, "
      << "<span id=\"backlog-ack-pending\">" << v.backlog.ack_pending << "</span> being handled, "
      << "oldest unacked <span id=\"backlog-oldest\">"
      << static_cast<std::int64_t>(v.backlog.oldest_unacked_age_seconds) << "</span> s</p>";

  out << "<h2>Workers: <span id=\"workers-count\">" << v.workers.size() << "</span></h2>"
      << "<table id=\"workers\"><thead><tr><th>worker</th><th>version</th><th class=\"n\">up</th>"
      << "<th class=\"n\">seen</th><th class=\"n\">transfers</th><th class=\"n\">messages</th></tr></thead><tbody>";
  for (const auto& w : v.workers)
    out << "<tr data-worker=\"" << escape(w.id) << "\"><td class=\"id\">" << escape(w.id) << "</td><td class=\"version\">"
        << escape(w.version) << "</td><td class=\"n up\">" << human_age(v.read_unix - w.started_unix)
        << "</td><td class=\"n seen\">" << human_age(v.read_unix - w.updated_unix) << " ago</td><td class=\"n transfers\">"
        << whole(w.transfers_in_flight) << "</td><td class=\"n messages\">" << whole(w.messages_in_flight) << "</td></tr>";
  out << "</tbody></table>";

  out << "<h2>Stores</h2><table id=\"stores\"><thead><tr><th>store</th><th class=\"n\">written</th>"
      << "<th class=\"n\">rate</th><th class=\"n\">requests</th><th class=\"n\">failed</th>"
      << "<th>budget (fleet)</th><th class=\"n\">throttled</th><th class=\"n\">handed back</th></tr></thead><tbody>";
  for (const auto& [name, s] : v.stores) {
    auto budget = v.budgets.find(name);
    out << "<tr data-store=\"" << escape(name) << "\"><td class=\"name\">" << escape(name)
        << "</td><td class=\"n bytes\" data-value=\"" << whole(s.bytes) << "\">" << human_bytes(s.bytes)
        << "</td><td class=\"n rate\" data-value=\"" << whole(s.bytes_per_second) << "\">"
        << human_bytes(s.bytes_per_second) << "/s</td><td class=\"n requests\">" << whole(s.requests)
        << "</td><td class=\"n failed\">" << whole(s.failed_requests) << "</td><td class=\"budget\">"
        << (budget == v.budgets.end() ? "none" : escape(budget->second)) << "</td><td class=\"n throttled\">"
        << human_wait_rate(s.throttled_per_second) << "</td><td class=\"n deferred\">" << whole(s.deferred)
        << "</td></tr>";
  }
  out << "</tbody></table>";

  out << "<h2>Messages settled</h2><table id=\"outcomes\"><thead><tr><th>state/code</th><th class=\"n\">count</th>"
      << "</tr></thead><tbody>";
  for (const auto& [code, n] : v.outcomes)
    out << "<tr data-outcome=\"" << escape(code) << "\"><td class=\"code\">" << escape(code)
        << "</td><td class=\"n count\">" << whole(n) << "</td></tr>";
  out << "</tbody></table>";

  out << "<h2>Dead letters: <span id=\"dead-letters-total\">"
      << (v.dead_letters ? std::to_string(v.dead_letters->total) : std::string("0")) << "</span>"
      << (v.dead_letters && !v.dead_letters->complete ? "+" : "") << "</h2>"
      << "<table id=\"dead-letters\"><thead><tr><th>code</th><th class=\"n\">count</th></tr></thead><tbody>";
  if (v.dead_letters)
    for (const auto& [code, n] : v.dead_letters->by_code)
      out << "<tr data-code=\"" << escape(code) << "\"><td class=\"code\">" << escape(code)
          << "</td><td class=\"n count\">" << n << "</td></tr>";
  out << "</tbody></table>";

  out << "<h2>Last verify and backfill</h2><table id=\"runs\"><thead><tr><th>route</th><th>command</th>"
      << "<th class=\"n\">finished</th><th class=\"n\">compared</th><th class=\"n\">missing</th>"
      << "<th class=\"n\">different</th><th class=\"n\">extra</th><th>result</th></tr></thead><tbody>";
  for (const auto& r : v.runs)
    out << "<tr data-run=\"" << escape(run_key(r)) << "\"><td class=\"route\">" << r.route << " "
        << escape(r.source) << "</td><td class=\"command\">" << escape(r.command) << "</td><td class=\"n finished\">"
        << human_age(v.read_unix - r.finished_unix) << " ago</td><td class=\"n compared\">" << r.compared
        << "</td><td class=\"n missing\">" << r.missing << "</td><td class=\"n different\">" << r.different
        << "</td><td class=\"n extra\">" << r.extra << "</td><td class=\"result\">" << escape(r.result)
        << (r.complete ? "" : " (incomplete)") << "</td></tr>";
  out << "</tbody></table>";
  out << "<p><small>Read from NATS every " << status_page_refresh_seconds
      << " s or so; the same as <a href=\"/status.json\">/status.json</a> and <code>archie status</code>."
      << "</small></p></main></body></html>\n";
  return out.str();
}

std::string render_status_placeholder() {
  std::ostringstream out;
  head(out, 1, "archie: reading");
  out << "<p>Reading the fleet's state from NATS&hellip;</p></body></html>\n";
  return out.str();
}

}  // namespace archie::fleet
