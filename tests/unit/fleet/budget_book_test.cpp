#include "fleet/budget_book.hpp"

#include <doctest/doctest.h>

using namespace archie;
using fleet::count_share;
using fleet::fleet_position;

TEST_CASE("the shares of a transfer budget add up to the budget for every fleet size") {
  for (std::int64_t total : {1, 2, 7, 8, 64}) {
    for (std::size_t workers = 1; workers <= 10; ++workers) {
      std::size_t sum = 0, most = 0, least = total;
      for (std::size_t rank = 0; rank < workers; ++rank) {
        auto share = count_share(total, fleet_position{workers, rank});
        sum += share;
        most = std::max(most, share);
        least = std::min(least, share);
      }
      CHECK(sum == static_cast<std::size_t>(total));
      CHECK(most - least <= 1);
    }
  }
  CHECK(count_share(0, fleet_position{3, 0}) == 0);
}

TEST_CASE("a worker's place comes from the registry keys, itself counted in when missing") {
  auto p = fleet_position::from_keys({"host-b-2", "host-a-1", "host-c-3"}, "host-b-2");
  CHECK(p.workers == 3);
  CHECK(p.rank == 1);
  auto alone = fleet_position::from_keys({}, "me-1");
  CHECK(alone.workers == 1);
  CHECK(alone.rank == 0);
  auto unlisted = fleet_position::from_keys({"a-1", "b-2"}, "c-3");
  CHECK(unlisted.workers == 3);
  CHECK(unlisted.rank == 2);
}

namespace {

config::config two_routes() {
  config::config cfg;
  cfg.worker.concurrency = 16;
  config::route_config a;
  a.source = {"src", "a", ""};
  a.destinations = {{"slow", "backup", ""}, {"shared", "backup", ""}};
  config::route_config b;
  b.source = {"src", "b", ""};
  b.destinations = {{"fast", "backup", ""}, {"shared", "backup2", ""}};
  cfg.routes = {a, b};
  for (const char* s : {"src", "slow", "fast", "shared"}) cfg.budgets[s] = {};
  return cfg;
}

}  // namespace

TEST_CASE("a destination some route does not write to holds at most concurrency records; one every route writes to is not gated") {
  fleet::budget_book book(two_routes());
  auto* slow = book.gate_for_record("slow");
  REQUIRE(slow);
  CHECK(slow->limit() == 16);
  CHECK(book.shares_slots("slow"));
  CHECK_FALSE(book.gate_for_record("shared"));  // every route writes to it: not gated
  CHECK_FALSE(book.shares_slots("shared"));
  CHECK_FALSE(book.gate_for_record("src"));     // a source only
  CHECK_FALSE(book.send_budget_for("slow"));    // no rate budget: nothing paced
}

TEST_CASE("fleet budgets are shared by the live workers and return when a worker goes") {
  auto cfg = two_routes();
  cfg.budgets["shared"].transfers = 8;
  cfg.budgets["shared"].requests_per_second = 60;
  cfg.budgets["shared"].bandwidth = std::get<config::bandwidth_schedule>(config::parse_bandwidth_schedule("20MB"));
  fleet::budget_book book(cfg);
  auto* gate = book.gate_for_record("shared");
  REQUIRE(gate);
  CHECK(gate->limit() == 8);  // alone until the registry says otherwise (and below the cap of 16)
  auto pace = book.send_budget_for("shared");
  REQUIRE(pace);
  // 20 MB/s alone: body chunks of 50 ms of budget.
  CHECK(pace->body_chunk() == 1'000'000);
  book.apply(fleet_position{3, 2});
  CHECK(gate->limit() == 2);  // 8 = 3 + 3 + 2
  CHECK(pace->body_chunk() == static_cast<std::size_t>(20e6 / 3 * 0.05));
  book.apply(fleet_position{2, 1});
  CHECK(gate->limit() == 4);
}
