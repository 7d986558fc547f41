#include "config/secret_file.hpp"

#include "log/logger.hpp"

#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

using archie::config::secret;
using archie::config::secret_file_watch;
namespace fs = std::filesystem;

namespace {

// A directory laid out as the kubelet lays out a mounted Secret: KEY -> ..data/KEY and
// ..data -> a timestamped directory, replaced by swapping the ..data symlink.
struct mounted_secret {
  fs::path dir;
  int version = 0;

  mounted_secret() {
    char tmpl[] = "/tmp/archie-secret-XXXXXX";
    dir = ::mkdtemp(tmpl);
  }
  ~mounted_secret() { fs::remove_all(dir); }

  void publish(const std::string& value) {
    fs::path ts = dir / ("..2026_11_29_" + std::to_string(++version));
    fs::create_directory(ts);
    std::ofstream(ts / "key") << value;
    fs::path tmp = dir / "..data_tmp";
    fs::create_directory_symlink(ts.filename(), tmp);
    fs::rename(tmp, dir / "..data");  // atomic swap, as the kubelet does
    if (!fs::exists(fs::symlink_status(dir / "key"))) fs::create_symlink("..data/key", dir / "key");
  }
  std::string path() const { return (dir / "key").string(); }
};

}  // namespace

TEST_CASE("a mounted secret swapped by its ..data symlink is re-read, without its trailing newline") {
  mounted_secret m;
  m.publish("first\n");
  secret_file_watch w(secret("first", "file " + m.path(), m.path()));
  CHECK(w.watched());
  CHECK_FALSE(w.check_now());
  m.publish("second\n");
  CHECK(w.check_now());
  CHECK(w.value().reveal() == "second");
  CHECK(w.value().origin() == "file " + m.path());
  CHECK(w.reloads() == 1);
}

TEST_CASE("an empty or vanished new version is reported once and the previous value is kept") {
  mounted_secret m;
  m.publish("good");
  secret_file_watch w(secret("good", "file " + m.path(), m.path()));
  std::string logs;
  archie::log::set_sink_for_tests(&logs);
  m.publish("\n");
  CHECK_FALSE(w.check_now());
  CHECK_FALSE(w.check_now());  // the same bad version again: not reported twice
  fs::remove(m.dir / "..data");
  CHECK_FALSE(w.check_now());
  archie::log::set_sink_for_tests(nullptr);
  CHECK(w.value().reveal() == "good");
  CHECK(logs.find("keeping the previous value") != std::string::npos);
  CHECK(logs.find("good") == std::string::npos);
  m.publish("better");
  CHECK(w.check_now());
  CHECK(w.value().reveal() == "better");
}

TEST_CASE("a secret that did not come from a file is never re-read") {
  secret_file_watch w(secret("inline-value", "inline"));
  CHECK_FALSE(w.watched());
  CHECK_FALSE(w.check_now());
  CHECK(w.value().reveal() == "inline-value");
}
