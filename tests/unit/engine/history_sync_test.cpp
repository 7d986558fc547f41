// plan_history without servers: two histories in, the steps that level them out. Histories
// are written oldest first here ("v1", "DM", "v2") and reversed into the stores' newest-first
// order, which is how a reader thinks of a history.
#include "engine/history_sync.hpp"

#include <doctest/doctest.h>

#include <algorithm>

using namespace archie;
using engine::history_step;
using engine::plan_history;
using kind = history_step::kind;

namespace {

// Source: "v1", "DM" (a delete marker; IDs "dm<n>" for the n-th one).
store::version_history source(std::vector<std::string> oldest_first) {
  store::version_history h;
  int markers = 0;
  for (const auto& v : oldest_first) {
    store::object_version e;
    e.delete_marker = v == "DM";
    e.version_id = e.delete_marker ? "dm" + std::to_string(++markers) : v;
    h.push_back(e);
  }
  std::reverse(h.begin(), h.end());
  if (!h.empty()) h.front().latest = true;
  return h;
}

// Destination: "v1" is a copy of source v1 (its own ID "d-v1"), "DM" a marker ("ddm<n>"),
// "?" a version archie did not write.
store::version_history replica(std::vector<std::string> oldest_first) {
  store::version_history h;
  int markers = 0, foreign = 0;
  for (const auto& v : oldest_first) {
    store::object_version e;
    if (v == "DM") {
      e.delete_marker = true;
      e.version_id = "ddm" + std::to_string(++markers);
    } else if (v == "?") {
      e.version_id = "foreign" + std::to_string(++foreign);
    } else {
      e.version_id = "d-" + v;
      e.source_version_id = v;
    }
    h.push_back(e);
  }
  std::reverse(h.begin(), h.end());
  return h;
}

history_step copy(std::string v) { return {kind::copy, std::move(v)}; }
history_step marker() { return {kind::delete_marker, {}}; }
history_step removal(std::string v) { return {kind::remove_version, std::move(v)}; }

}  // namespace

TEST_CASE("an empty destination gets the whole history in order, delete markers where they were") {
  CHECK(plan_history(source({"v1", "v2", "DM", "v3"}), {}, true) ==
        std::vector{copy("v1"), copy("v2"), marker(), copy("v3")});
}

TEST_CASE("a level destination needs nothing: a redelivery or a late event copies nothing twice") {
  CHECK(plan_history(source({"v1", "v2"}), replica({"v1", "v2"}), true).empty());
  CHECK(plan_history(source({"v1", "DM"}), replica({"v1", "DM"}), true).empty());
  CHECK(plan_history(source({"v1", "DM", "v2"}), replica({"v1", "DM", "v2"}), true).empty());
}

TEST_CASE("only the newer versions are copied, after what the destination has") {
  CHECK(plan_history(source({"v1", "v2", "v3"}), replica({"v1"}), true) == std::vector{copy("v2"), copy("v3")});
}

TEST_CASE("a delete marker on top of the source becomes one at a destination that propagates deletes") {
  CHECK(plan_history(source({"v1", "DM"}), replica({"v1"}), true) == std::vector{marker()});
  // A backup (deletes = "ignore") keeps the data current, and never writes markers.
  CHECK(plan_history(source({"v1", "DM"}), replica({"v1"}), false).empty());
  CHECK(plan_history(source({"v1", "DM", "v2"}), {}, false) == std::vector{copy("v1"), copy("v2")});
}

TEST_CASE("a version deleted for good at the source is deleted at a propagating destination only") {
  CHECK(plan_history(source({"v2"}), replica({"v1", "v2"}), true) == std::vector{removal("d-v1")});
  CHECK(plan_history(source({"v2"}), replica({"v1", "v2"}), false).empty());
  // Versions archie did not write are not its to delete.
  CHECK(plan_history(source({"v2"}), replica({"?", "v2"}), true).empty());
}

TEST_CASE("the latest version deleted for good at the source: the older one is current again everywhere") {
  // v2 went; the copy of v2 goes and the copy of v1 is current again.
  CHECK(plan_history(source({"v1"}), replica({"v1", "v2"}), true) == std::vector{removal("d-v2")});
  // A backup keeps v2 and must still show v1 as current: v1 is copied again on top.
  CHECK(plan_history(source({"v1"}), replica({"v1", "v2"}), false) == std::vector{copy("v1")});
}

TEST_CASE("the source's delete marker deleted: the destination's marker goes, no bytes copied") {
  CHECK(plan_history(source({"v1"}), replica({"v1", "DM"}), true) == std::vector{removal("ddm1")});
}

TEST_CASE("a version missing in the middle is filled in, then the current one is copied again on top") {
  CHECK(plan_history(source({"v1", "v2", "v3"}), replica({"v1", "v3"}), true) == std::vector{copy("v2"), copy("v3")});
}

TEST_CASE("every key deleted for good at the source: a propagating destination removes its copies") {
  CHECK(plan_history({}, replica({"v1", "v2"}), true) == std::vector{removal("d-v1"), removal("d-v2")});
  CHECK(plan_history({}, replica({"v1"}), false).empty());
  CHECK(plan_history({}, {}, true).empty());
}

TEST_CASE("any order of partial copies converges: applying the plan leaves nothing to do") {
  // Simulate the destination: apply the steps, then plan again; the second plan is empty.
  const std::vector<std::vector<std::string>> sources = {
      {"v1"}, {"v1", "v2"}, {"v1", "DM"}, {"v1", "DM", "v2"}, {"v1", "v2", "DM", "DM", "v3"}, {"DM", "v1"}};
  const std::vector<std::vector<std::string>> replicas = {{}, {"v1"}, {"v2"}, {"v1", "DM"}, {"v3", "v1"}, {"?"}};
  for (bool propagate : {true, false}) {
    for (const auto& s : sources) {
      for (const auto& r : replicas) {
        auto src = source(s);
        auto dst = replica(r);
        int fresh = 0;
        for (const auto& step : plan_history(src, dst, propagate)) {
          if (step.what == kind::copy) {
            store::object_version v;
            v.version_id = "new" + std::to_string(++fresh);
            v.source_version_id = step.version_id;
            dst.insert(dst.begin(), v);
          } else if (step.what == kind::delete_marker) {
            store::object_version v;
            v.delete_marker = true;
            v.version_id = "newdm" + std::to_string(++fresh);
            dst.insert(dst.begin(), v);
          } else {
            std::erase_if(dst, [&](const store::object_version& v) { return v.version_id == step.version_id; });
          }
        }
        INFO("propagate " << propagate << ", source " << s.size() << " entries, replica " << r.size());
        CHECK(plan_history(src, dst, propagate).empty());
        // The current version agrees with the source's (propagating: markers too).
        const bool source_absent = src.empty() || src.front().delete_marker;
        if (!source_absent) {
          REQUIRE_FALSE(dst.empty());
          CHECK(dst.front().source_version_id == src.front().version_id);
        } else if (propagate && !dst.empty()) {
          CHECK(dst.front().delete_marker);
        }
      }
    }
  }
}
