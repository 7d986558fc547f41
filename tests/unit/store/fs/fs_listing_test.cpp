#include "store/fs/fs_listing.hpp"

#include "store/fs/fs_destination.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <doctest/doctest.h>

#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

namespace stdfs = std::filesystem;
using archie::store::listed_entry;

namespace {

struct temp_root {
  stdfs::path path;
  temp_root() {
    char tmpl[] = "/tmp/archie-listing-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~temp_root() { stdfs::remove_all(path); }
};

void put(const stdfs::path& p, const std::string& body) {
  stdfs::create_directories(p.parent_path());
  std::ofstream(p) << body;
}

std::vector<listed_entry> list_all(const std::string& root, const std::string& bucket, const std::string& prefix) {
  boost::asio::io_context io;
  boost::asio::thread_pool pool(1);
  archie::store::fs::fs_listing listing(pool, "local", root, bucket, prefix);
  std::vector<listed_entry> all;
  auto walk = [&]() -> boost::asio::awaitable<void> {
    for (;;) {
      auto page = co_await listing.next_page();
      REQUIRE(page.has_value());
      if (page->empty()) break;
      for (auto& e : page.value()) all.push_back(std::move(e));
    }
  };
  auto done = boost::asio::co_spawn(io, walk(), boost::asio::use_future);
  io.run();
  done.get();
  pool.join();
  return all;
}

}  // namespace

TEST_CASE("a local directory is listed in S3's byte order of keys, not in directory-walk order") {
  temp_root root;
  // '-' (0x2d) < '/' (0x2f) < '0' (0x30): "a-b" < "a/x" < "a0"; a plain walk would list a/ first or last.
  std::vector<std::string> keys{"a-b", "a/x", "a/y/z", "a0", "b", "a/y-", "\xc3\xa9"};
  keys.push_back(".archie-123456.tmp");  // a key like archie's old temp files is an object like any other
  for (const auto& k : keys) put(root.path / "bucket" / k, k);
  stdfs::create_symlink("/etc/passwd", root.path / "bucket" / "link");
  auto all = list_all(root.path.string(), "bucket", "");
  std::vector<std::string> got;
  for (const auto& e : all) got.push_back(e.key);
  std::sort(keys.begin(), keys.end());
  CHECK(got == keys);
  CHECK(all[0].size == keys[0].size());
}

TEST_CASE("a local listing carries the recorded source ETag and honours the prefix") {
  temp_root root;
  put(root.path / "bucket" / "in" / "one", "1");
  put(root.path / "bucket" / "in" / "two", "22");
  put(root.path / "bucket" / "out" / "three", "333");
  std::string marker = "abc123";
  ::setxattr((root.path / "bucket" / "in" / "one").c_str(), archie::store::fs::source_etag_xattr, marker.data(),
             marker.size(), 0);
  auto all = list_all(root.path.string(), "bucket", "in/");
  REQUIRE(all.size() == 2);
  CHECK(all[0].key == "in/one");
  REQUIRE(all[0].marker);
  // tmpfs and some file systems refuse user xattrs; the listing then says "no marker".
  CHECK((*all[0].marker == marker || all[0].marker->empty()));
  CHECK(all[1].key == "in/two");
  CHECK(all[1].marker == std::string());
  CHECK(list_all(root.path.string(), "no-such-bucket", "").empty());
}
