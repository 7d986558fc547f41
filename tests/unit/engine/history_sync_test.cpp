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
      e.version_id = "d-" + v;  // a second copy of the same version: "d-v1#2"
      const auto copies = std::count_if(h.begin(), h.end(), [&](const auto& x) { return x.source_version_id == v; });
      if (copies > 0) e.version_id += "#" + std::to_string(copies + 1);
      e.source_version_id = v;
    }
    h.push_back(e);
  }
  std::reverse(h.begin(), h.end());
  return h;
}

// A destination whose history holds delete markers anywhere (S3).
std::vector<history_step> plan(const store::version_history& src, const store::version_history& dst, bool propagate) {
  return plan_history(src, dst, propagate, true);
}

history_step copy(std::string v) { return {kind::copy, std::move(v)}; }
history_step marker() { return {kind::delete_marker, {}}; }
history_step removal(std::string v) { return {kind::remove_version, std::move(v)}; }

}  // namespace

TEST_CASE("an empty destination gets the whole history in order, delete markers where they were") {
  CHECK(plan(source({"v1", "v2", "DM", "v3"}), {}, true) ==
        std::vector{copy("v1"), copy("v2"), marker(), copy("v3")});
}

TEST_CASE("a level destination needs nothing: a redelivery or a late event copies nothing twice") {
  CHECK(plan(source({"v1", "v2"}), replica({"v1", "v2"}), true).empty());
  CHECK(plan(source({"v1", "DM"}), replica({"v1", "DM"}), true).empty());
  CHECK(plan(source({"v1", "DM", "v2"}), replica({"v1", "DM", "v2"}), true).empty());
}

TEST_CASE("only the newer versions are copied, after what the destination has") {
  CHECK(plan(source({"v1", "v2", "v3"}), replica({"v1"}), true) == std::vector{copy("v2"), copy("v3")});
}

TEST_CASE("a delete marker on top of the source becomes one at a destination that propagates deletes") {
  CHECK(plan(source({"v1", "DM"}), replica({"v1"}), true) == std::vector{marker()});
  // A backup (deletes = "ignore") keeps the data current, and never writes markers.
  CHECK(plan(source({"v1", "DM"}), replica({"v1"}), false).empty());
  CHECK(plan(source({"v1", "DM", "v2"}), {}, false) == std::vector{copy("v1"), copy("v2")});
}

TEST_CASE("a version deleted for good at the source is deleted at a propagating destination only") {
  CHECK(plan(source({"v2"}), replica({"v1", "v2"}), true) == std::vector{removal("d-v1")});
  CHECK(plan(source({"v2"}), replica({"v1", "v2"}), false).empty());
  // Versions archie did not write are not its to delete.
  CHECK(plan(source({"v2"}), replica({"?", "v2"}), true).empty());
}

TEST_CASE("the latest version deleted for good at the source: the older one is current again everywhere") {
  // v2 went; the copy of v2 goes and the copy of v1 is current again.
  CHECK(plan(source({"v1"}), replica({"v1", "v2"}), true) == std::vector{removal("d-v2")});
  // A backup keeps v2 and must still show v1 as current: v1 is copied again on top (and
  // its copy below goes, so that it is there once).
  CHECK(plan(source({"v1"}), replica({"v1", "v2"}), false) == std::vector{copy("v1"), removal("d-v1")});
}

TEST_CASE("the source's delete marker deleted: the destination's marker goes, no bytes copied") {
  CHECK(plan(source({"v1"}), replica({"v1", "DM"}), true) == std::vector{removal("ddm1")});
}

TEST_CASE("a version missing in the middle is filled in, and the copies above its place written again after it") {
  CHECK(plan(source({"v1", "v2", "v3"}), replica({"v1", "v3"}), true) ==
        std::vector{copy("v2"), copy("v3"), removal("d-v3")});
}

TEST_CASE("two workers racing on one key: duplicate and out-of-order copies are removed, the order restored") {
  // Both copied v2: one copy goes.
  CHECK(plan(source({"v1", "v2"}), replica({"v1", "v2", "v2"}), true) == std::vector{removal("d-v2")});
  // v1 landed after v2: the copies out of order go and are written again in order.
  auto steps = plan(source({"v1", "v2"}), replica({"v2", "v1"}), true);
  std::erase_if(steps, [](const history_step& h) { return h.what == kind::remove_version; });
  CHECK(steps.back() == copy("v2"));
  CHECK(std::count(steps.begin(), steps.end(), copy("v1")) + std::count(steps.begin(), steps.end(), copy("v2")) <= 2);
}

TEST_CASE("every key deleted for good at the source: a propagating destination removes its copies") {
  CHECK(plan({}, replica({"v1", "v2"}), true) == std::vector{removal("d-v1"), removal("d-v2")});
  CHECK(plan({}, replica({"v1"}), false).empty());
  CHECK(plan({}, {}, true).empty());
}

// Applies steps to a destination history the way a versioned bucket would.
void apply(store::version_history& dst, const std::vector<history_step>& steps, int& fresh) {
  for (const auto& step : steps) {
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
      REQUIRE(std::count_if(dst.begin(), dst.end(),
                            [&](const store::object_version& v) { return v.version_id == step.version_id; }) == 1);
      std::erase_if(dst, [&](const store::object_version& v) { return v.version_id == step.version_id; });
    }
  }
}

// The destination's copies of versions the source still has, oldest first.
std::vector<std::string> copies_of(const store::version_history& dst, const store::version_history& src) {
  std::vector<std::string> out;
  for (auto it = dst.rbegin(); it != dst.rend(); ++it)
    if (!it->delete_marker &&
        std::any_of(src.begin(), src.end(), [&](const auto& s) { return s.version_id == it->source_version_id; }))
      out.push_back(it->source_version_id);
  return out;
}

TEST_CASE("any history, however damaged by races, is levelled by one plan: in order, once each, current on top") {
  std::uint32_t state = 12345;  // a fixed sequence: the same cases on every run
  auto next = [&](std::uint32_t n) {
    state = state * 1103515245u + 12345u;
    return (state >> 16) % n;
  };
  for (int round = 0; round < 3000; ++round) {
    std::vector<std::string> s;
    int versions = 0;
    for (std::uint32_t i = 0, n = next(7); i < n; ++i) s.push_back(next(4) == 0 ? "DM" : "v" + std::to_string(++versions));
    std::vector<std::string> r;  // copies of any version ever made (some deleted since: v<n> > versions), dups, disorder
    for (std::uint32_t i = 0, n = next(7); i < n; ++i) {
      auto pick = next(10);
      r.push_back(pick == 0 ? "DM" : pick == 1 ? "?" : "v" + std::to_string(1 + next(versions + 2)));
    }
    const bool propagate = next(2) == 0;
    auto src = source(s);
    auto dst = replica(r);
    int fresh = 0;
    apply(dst, plan(src, dst, propagate), fresh);
    INFO("round " << round << " propagate " << propagate);
    CHECK(plan(src, dst, propagate).empty());
    std::vector<std::string> want;
    for (auto it = src.rbegin(); it != src.rend(); ++it)
      if (!it->delete_marker) want.push_back(it->version_id);
    CHECK(copies_of(dst, src) == want);
    if (!src.empty() && !src.front().delete_marker) {
      REQUIRE_FALSE(dst.empty());
      CHECK(dst.front().source_version_id == src.front().version_id);
    } else if (propagate && !dst.empty()) {
      CHECK(dst.front().delete_marker);
    }
    if (!propagate) {
      // A backup loses no version it had, even when the plan stops after any step (an
      // outage, the version deleted at the source meanwhile): removals come last.
      auto before = replica(r);
      auto steps = plan(src, before, false);
      for (std::size_t stop = 0; stop <= steps.size(); ++stop) {
        auto partial = before;
        int n = 0;
        apply(partial, std::vector<history_step>(steps.begin(), steps.begin() + static_cast<std::ptrdiff_t>(stop)), n);
        for (const auto& v : before)
          if (!v.source_version_id.empty())
            CHECK(std::any_of(partial.begin(), partial.end(),
                              [&](const auto& p) { return p.source_version_id == v.source_version_id; }));
      }
    }
    if (!propagate) {  // a backup loses nothing it had: every copy of a deleted version stays
      auto had = replica(r);
      for (const auto& v : had)
        if (!v.source_version_id.empty() && std::none_of(src.begin(), src.end(), [&](const auto& x) {
              return x.version_id == v.source_version_id;
            }))
          CHECK(std::any_of(dst.begin(), dst.end(), [&](const auto& d) { return d.version_id == v.version_id; }));
    }
  }
}

// A bucket with object versioning (GCS): generations newest first, the newest one live or
// not, and no delete markers. history() shows it as gcs_destination does.
struct generations {
  store::version_history gens;  // object versions only
  bool live = false;
  int fresh = 0;

  store::version_history history() const {
    store::version_history h;
    if (gens.empty() || !live) {
      store::object_version deleted;
      deleted.delete_marker = deleted.latest = true;
      h.push_back(deleted);
    }
    h.insert(h.end(), gens.begin(), gens.end());
    return h;
  }
  void apply(const std::vector<history_step>& steps) {
    for (const auto& step : steps) {
      if (step.what == kind::copy) {
        store::object_version v;
        v.version_id = "g" + std::to_string(++fresh);
        v.source_version_id = step.version_id;
        gens.insert(gens.begin(), v);
        live = true;
      } else if (step.what == kind::delete_marker) {
        live = false;  // the live generation becomes noncurrent (none: a 404, taken as done)
      } else if (!step.version_id.empty()) {
        auto at = std::find_if(gens.begin(), gens.end(), [&](const auto& g) { return g.version_id == step.version_id; });
        REQUIRE(at != gens.end());
        if (at == gens.begin()) live = false;  // the live one deleted for good: nothing is live
        gens.erase(at);
      }
    }
  }
};

TEST_CASE("a destination without delete markers (GCS) gets the versions, and no live object after a delete") {
  auto src = source({"v1", "DM", "v2", "DM"});
  generations dst;
  auto steps = plan_history(src, dst.history(), true, false);
  CHECK(steps == std::vector{copy("v1"), copy("v2"), marker()});
  dst.apply(steps);
  CHECK(plan_history(src, dst.history(), true, false).empty());
  // The source's delete marker deleted: v2 is current again, written again as the live one.
  src = source({"v1", "DM", "v2"});
  steps = plan_history(src, dst.history(), true, false);
  CHECK(steps == std::vector{copy("v2"), removal("g2")});
  dst.apply(steps);
  CHECK(dst.live);
  CHECK(plan_history(src, dst.history(), true, false).empty());
  // A backup never deletes: the current version stays live.
  generations backup;
  backup.apply(plan_history(source({"v1", "DM"}), backup.history(), false, false));
  CHECK(backup.live);
}

TEST_CASE("any source history reaches a GCS-like destination in one plan: its versions in order, current live") {
  std::uint32_t state = 777;  // a fixed sequence: the same cases on every run
  auto next = [&](std::uint32_t n) {
    state = state * 1103515245u + 12345u;
    return (state >> 16) % n;
  };
  for (int round = 0; round < 2000; ++round) {
    std::vector<std::string> s;
    int versions = 0;
    for (std::uint32_t i = 0, n = next(7); i < n; ++i) s.push_back(next(3) == 0 ? "DM" : "v" + std::to_string(++versions));
    generations dst;  // copies of any version ever made, duplicated or out of order, live or not
    for (std::uint32_t i = 0, n = next(6); i < n; ++i) {
      store::object_version g;
      g.version_id = "old" + std::to_string(i);
      g.source_version_id = "v" + std::to_string(1 + next(versions + 2));
      dst.gens.insert(dst.gens.begin(), g);
    }
    dst.live = next(2) == 0;
    const bool propagate = next(2) == 0;
    auto src = source(s);
    INFO("round " << round << " propagate " << propagate);
    dst.apply(plan_history(src, dst.history(), propagate, false));
    CHECK(plan_history(src, dst.history(), propagate, false).empty());
    std::vector<std::string> want;
    for (auto it = src.rbegin(); it != src.rend(); ++it)
      if (!it->delete_marker) want.push_back(it->version_id);
    CHECK(copies_of(dst.history(), src) == want);
    if (!src.empty() && !src.front().delete_marker) {
      REQUIRE(dst.live);
      CHECK(dst.gens.front().source_version_id == src.front().version_id);
    } else if (propagate) {
      CHECK((dst.gens.empty() || !dst.live));
    }
  }
}
