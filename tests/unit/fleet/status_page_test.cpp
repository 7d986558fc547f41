// The /status page's HTML from a fleet view, without a server: the elements the browser test
// reads, and names from the config escaped.
#include "fleet/status_page.hpp"

#include <doctest/doctest.h>

using namespace archie;

namespace {

fleet::fleet_view sample() {
  fleet::fleet_view v;
  v.read_unix = 1'800'000'100;
  fleet::worker_entry w;
  w.id = "pod-a-1";
  w.version = "0.1.0";
  w.started_unix = 1'800'000'000;
  w.updated_unix = 1'800'000'098;
  w.transfers_in_flight = 3;
  v.workers.push_back(w);
  v.backlog.pending = 12;
  v.backlog.ack_pending = 4;
  v.backlog.oldest_unacked_age_seconds = 7.9;
  v.stores["<b>dst</b>"] = {1536, 512, 9, 1, 0};
  v.outcomes["ack/copied"] = 40;
  v.dead_letters = fleet::dead_letter_counts{2, true, {{"malformed_event", 2}}};
  v.problems.push_back("2 dead letters wait for an operator (archie dead-letters list)");
  return v;
}

bool has(const std::string& page, const std::string& part) { return page.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("the status page shows every number in the elements the browser test reads") {
  const auto page = fleet::render_status_page(sample());
  CHECK(has(page, "<meta http-equiv=\"refresh\" content=\"5\">"));
  CHECK(has(page, "<main id=\"archie-status\" data-state=\"degraded\">"));
  CHECK(has(page, "<span id=\"backlog-pending\">12</span>"));
  CHECK(has(page, "<span id=\"backlog-ack-pending\">4</span>"));
  CHECK(has(page, "<span id=\"backlog-oldest\">7</span>"));
  CHECK(has(page, "<span id=\"workers-count\">1</span>"));
  CHECK(has(page, "<tr data-worker=\"pod-a-1\">"));
  CHECK(has(page, "<td class=\"n transfers\">3</td>"));
  CHECK(has(page, "<td class=\"n seen\">2s ago</td>"));
  CHECK(has(page, "data-value=\"1536\">1.5 KiB</td>"));
  CHECK(has(page, "<tr data-outcome=\"ack/copied\"><td class=\"code\">ack/copied</td><td class=\"n count\">40</td>"));
  CHECK(has(page, "<span id=\"dead-letters-total\">2</span>"));
  CHECK(has(page, "<tr data-code=\"malformed_event\">"));
  CHECK(has(page, "<li>2 dead letters wait for an operator (archie dead-letters list)</li>"));
  // A name from the config is text, never markup; and nothing is loaded from elsewhere.
  CHECK_FALSE(has(page, "<b>dst</b>"));
  CHECK(has(page, "data-store=\"&lt;b&gt;dst&lt;/b&gt;\""));
  CHECK_FALSE(has(page, "src="));
  CHECK_FALSE(has(page, "<script"));
  CHECK_FALSE(has(page, "://"));  // no URL at all, so nothing from elsewhere
}

TEST_CASE("a healthy fleet says so, and the placeholder reloads within a second") {
  fleet::fleet_view v;
  CHECK(has(fleet::render_status_page(v), "data-state=\"healthy\""));
  CHECK(has(fleet::render_status_page(v), "<span id=\"dead-letters-total\">0</span>"));
  CHECK(has(fleet::render_status_placeholder(), "<meta http-equiv=\"refresh\" content=\"1\">"));
}
