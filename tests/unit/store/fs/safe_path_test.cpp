#include "store/fs/fs_destination.hpp"

#include <doctest/doctest.h>

using archie::store::fs::safe_path;

TEST_CASE("keys map under root/bucket") {
  CHECK(safe_path("/r", "b", "a/b/c.txt") == "/r/b/a/b/c.txt");
  CHECK(safe_path("/r", "b", "with space+plus%.txt") == "/r/b/with space+plus%.txt");
}

TEST_CASE("keys that could escape the root or collapse are refused") {
  for (const char* key : {"../etc/passwd", "a/../../x", "a/./b", "/abs", "a//b", "trailing/", "", "."})
    CHECK_MESSAGE(!safe_path("/r", "b", key), key);
  CHECK_FALSE(safe_path("/r", "..", "x"));
  CHECK_FALSE(safe_path("/r", "a/b", "x"));
  CHECK_FALSE(safe_path("/r", "b", std::string(300, 'x')));
}
