#include "fleet/run_summaries.hpp"

#include <doctest/doctest.h>

using namespace archie::fleet;

TEST_CASE("a run summary reads back as it was written, under its command's and route's key") {
  run_summary s;
  s.command = "backfill";
  s.route = 3;
  s.source = "minio:media/";
  s.finished_unix = 1'790'000'000;
  s.elapsed_seconds = 12.5;
  s.complete = false;
  s.compared = 1'000'000;
  s.missing = 4;
  s.different = 2;
  s.extra = 7;
  s.result = "publish: 6 copies, 0 removals, 6 events published, 0 failed";
  s.host = "archie-7d9f";
  auto back = run_summary_from_json(to_json(s));
  REQUIRE(back);
  CHECK(to_json(*back) == to_json(s));
  CHECK(run_key(s) == "backfill.route-3");
}

TEST_CASE("a value that is not a run summary is skipped, not shown") {
  CHECK_FALSE(run_summary_from_json("not json"));
  CHECK_FALSE(run_summary_from_json("{}"));
  CHECK_FALSE(run_summary_from_json(R"({"command":"verify","route":0})"));
  CHECK_FALSE(run_summary_from_json(R"({"route":1})"));
}
