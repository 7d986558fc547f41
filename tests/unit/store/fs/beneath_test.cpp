#include "store/fs/beneath.hpp"

#include <doctest/doctest.h>

#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace fs = std::filesystem;
using namespace archie::store::fs;

namespace {

struct temp_root {
  fs::path path;
  temp_root() {
    char tmpl[] = "/tmp/archie-beneath-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~temp_root() { fs::remove_all(path); }
};

void touch(const fs::path& p) { std::ofstream(p) << "x"; }

}  // namespace

TEST_CASE("a symlink below the root is never followed, so a write cannot land outside the root") {
  temp_root root, outside;
  fs::create_directories(root.path / "bucket");
  fs::create_directory_symlink(outside.path, root.path / "bucket" / "escape");
  directory_chain chain;
  int err = open_chain(root.path.string(), "bucket/escape/file.txt", true, 0700, chain);
  CHECK((err == ELOOP || err == ENOTDIR));
  err = open_chain(root.path.string(), "bucket/escape/deeper/file.txt", true, 0700, chain);
  CHECK((err == ELOOP || err == ENOTDIR));
  CHECK(fs::is_empty(outside.path));
}

TEST_CASE("missing directories are created with the configured mode") {
  temp_root root;
  directory_chain chain;
  REQUIRE(open_chain(root.path.string(), "bucket/a/b/file.txt", true, 0750, chain) == 0);
  CHECK(chain.leaf() == "file.txt");
  struct stat st{};
  REQUIRE(::stat((root.path / "bucket" / "a" / "b").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == (0750 & ~[] { mode_t m = ::umask(0); ::umask(m); return m; }()));
}

TEST_CASE("removing the last file of a directory prunes the empty directories but keeps the bucket") {
  temp_root root;
  fs::create_directories(root.path / "bucket" / "a" / "b");
  fs::create_directories(root.path / "bucket" / "keep");
  touch(root.path / "bucket" / "a" / "b" / "f");
  touch(root.path / "bucket" / "keep" / "g");
  directory_chain chain;
  REQUIRE(open_chain(root.path.string(), "bucket/a/b/f", false, 0700, chain) == 0);
  REQUIRE(::unlinkat(chain.parent(), chain.leaf().c_str(), 0) == 0);
  prune_empty_directories(chain, 1);
  CHECK_FALSE(fs::exists(root.path / "bucket" / "a"));
  CHECK(fs::exists(root.path / "bucket"));
  CHECK(fs::exists(root.path / "bucket" / "keep" / "g"));
  // Now an object named like the removed directory can be a file.
  REQUIRE(open_chain(root.path.string(), "bucket/a", true, 0700, chain) == 0);
  CHECK(chain.leaf() == "a");
}

TEST_CASE("the staging sweep removes only old files of the staging directory, never a key named like one") {
  temp_root root;
  fs::create_directories(root.path / "bucket" / "d");
  fs::create_directories(root.path / archie::store::fs::staging_directory);
  auto old_partial = root.path / archie::store::fs::staging_directory / "123.part";
  auto fresh_partial = root.path / archie::store::fs::staging_directory / "456.part";
  auto key_like_a_temp_file = root.path / "bucket" / "d" / ".archie-123.tmp";  // a real object's key
  touch(old_partial);
  touch(fresh_partial);
  touch(key_like_a_temp_file);
  struct timeval past[2] = {{1, 0}, {1, 0}};
  REQUIRE(::utimes(old_partial.c_str(), past) == 0);
  REQUIRE(::utimes(key_like_a_temp_file.c_str(), past) == 0);
  CHECK(sweep_staging(root.path.string(), 60) == 1);
  CHECK_FALSE(fs::exists(old_partial));
  CHECK(fs::exists(fresh_partial));
  CHECK(fs::exists(key_like_a_temp_file));
}
