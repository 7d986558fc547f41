#include "engine/divergence.hpp"

#include <doctest/doctest.h>

using namespace archie;
using engine::key_state;
using store::listed_entry;

TEST_CASE("a replica of another size is different whatever its ETag") {
  listed_entry src{"k", 10, "abc", std::nullopt};
  listed_entry dst{"k", 11, "abc", std::nullopt};
  auto c = engine::compare_listed(src, dst);
  CHECK(c.state == key_state::different);
  CHECK_FALSE(c.needs_marker);
  CHECK(c.reason.find("size 11") != std::string::npos);
}

TEST_CASE("equal sizes and equal ETags are equal without reading the marker") {
  auto c = engine::compare_listed({"k", 10, "abc", std::nullopt}, {"k", 10, "abc", std::nullopt});
  CHECK(c.state == key_state::equal);
  CHECK_FALSE(c.needs_marker);
}

TEST_CASE("equal sizes with another ETag need the recorded source ETag to decide") {
  auto c = engine::compare_listed({"k", 10, "abc-2", std::nullopt}, {"k", 10, "def-3", std::nullopt});
  CHECK(c.needs_marker);
  CHECK(engine::compare_marker({"k", 10, "abc-2", std::nullopt}, "abc-2").state == key_state::equal);
  CHECK(engine::compare_marker({"k", 10, "abc-2", std::nullopt}, "old").state == key_state::different);
  CHECK(engine::compare_marker({"k", 10, "abc-2", std::nullopt}, "").reason.find("no archie") != std::string::npos);
}

TEST_CASE("a listing that carries the marker (local directory) is decided by it") {
  CHECK(engine::compare_listed({"k", 3, "abc", std::nullopt}, {"k", 3, "", std::string("abc")}).state == key_state::equal);
  auto c = engine::compare_listed({"k", 3, "abc", std::nullopt}, {"k", 3, "", std::string("zzz")});
  CHECK(c.state == key_state::different);
  CHECK_FALSE(c.needs_marker);
  CHECK(engine::compare_listed({"k", 3, "abc", std::nullopt}, {"k", 3, "", std::string()}).state ==
        key_state::different);
}

TEST_CASE("a key missing or different anywhere is one copy; extras are removed only when asked") {
  using engine::repair;
  CHECK(engine::repair_for(true, {key_state::equal, key_state::missing}, false) == repair::copy);
  CHECK(engine::repair_for(true, {key_state::different}, false) == repair::copy);
  CHECK(engine::repair_for(true, {key_state::equal, key_state::excluded}, true) == repair::none);
  CHECK(engine::repair_for(false, {key_state::extra, key_state::equal}, false) == repair::none);
  CHECK(engine::repair_for(false, {key_state::extra}, true) == repair::remove);
  CHECK(engine::repair_for(false, {key_state::excluded}, true) == repair::none);
}
