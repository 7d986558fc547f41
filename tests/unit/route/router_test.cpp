#include "route/router.hpp"

#include <doctest/doctest.h>

using namespace archie;

namespace {
config::route_config make_route(std::string bucket, std::string prefix, std::vector<config::route_endpoint> dests,
                           std::vector<std::string> exclude_copy = {}) {
  config::route_config r;
  r.source = {"src", std::move(bucket), std::move(prefix)};
  r.destinations = std::move(dests);
  r.exclude_copy = std::move(exclude_copy);
  return r;
}
}  // namespace

TEST_CASE("an event for a bucket no route covers has no route") {
  route::router r({make_route("photos", "", {{"dst", "backup", ""}})});
  CHECK(r.route("videos", "a.mp4").route == nullptr);
  CHECK(r.route("photos", "a.jpg").route != nullptr);
}

TEST_CASE("the destination key replaces the source prefix with the destination prefix") {
  route::router r({make_route("photos", "in/", {{"dst", "backup", "archive/"}, {"local", "mirror", ""}})});
  auto d = r.route("photos", "in/2026/cat.jpg");
  REQUIRE(d.targets.size() == 2);
  CHECK(d.targets[0].key == "archive/2026/cat.jpg");
  CHECK(d.targets[0].bucket == "backup");
  CHECK(d.targets[1].key == "2026/cat.jpg");
  CHECK(r.route("photos", "out/cat.jpg").route == nullptr);
}

TEST_CASE("the longest matching source prefix wins") {
  route::router r({make_route("b", "", {{"dst", "all", ""}}), make_route("b", "special/", {{"dst", "special", ""}})});
  CHECK(r.route("b", "special/x").targets[0].bucket == "special");
  CHECK(r.route("b", "other/x").targets[0].bucket == "all");
}

TEST_CASE("exclude patterns are PCRE2, unanchored unless anchored, UTF-8 aware") {
  route::key_filter f({"^tmp/", "\\.part$", "ü"});
  CHECK(f.matches("tmp/x"));
  CHECK_FALSE(f.matches("a/tmp/x"));
  CHECK(f.matches("upload.part"));
  CHECK(f.matches("München.txt"));
  CHECK_FALSE(f.matches("Munchen.txt"));
  CHECK(route::key_filter({}).empty());
  CHECK_THROWS_AS(route::key_filter({"(unclosed"}), std::invalid_argument);
}

TEST_CASE("an exclude pattern still matches a key that is not valid UTF-8 (fails closed, never open)") {
  route::key_filter keep({"^keep/"});
  CHECK(keep.matches(std::string("keep/\xff\xfe" "-broken")));
  CHECK(keep.matches("keep/ok.txt"));
  CHECK_FALSE(keep.matches(std::string("other/\xff")));
}
