#include "config/config.hpp"
#include "config/url_redaction.hpp"

#include <doctest/doctest.h>

using namespace archie::config;

TEST_CASE("credentials in a server URL are redacted, the rest of the URL is kept") {
  CHECK(redact_userinfo("nats://user:pa55@nats-0.nats:4222") == "nats://<redacted>@nats-0.nats:4222");
  CHECK(redact_userinfo("tls://token@host:4222/path") == "tls://<redacted>@host:4222/path");
  CHECK(redact_userinfo("nats://u:p@ss@host:4222") == "nats://<redacted>@host:4222");  // '@' in the password
  CHECK(redact_userinfo("nats://host:4222") == "nats://host:4222");
  // Generated passwords hold '/', '#' and '?' unescaped: the userinfo ends at the last '@'.
  CHECK(redact_userinfo("nats://bob:pa/ss@nats-0:4222") == "nats://<redacted>@nats-0:4222");
  CHECK(redact_userinfo("nats://carol:p#w@nats-0:4222") == "nats://<redacted>@nats-0:4222");
  CHECK(redact_userinfo("nats://dave:a?b/c@d@nats-0:4222") == "nats://<redacted>@nats-0:4222");
  CHECK(redact_userinfo("not a url") == "not a url");
}

TEST_CASE("every URL of a list and of free text is redacted") {
  CHECK(redact_userinfo_list("nats://a:b@h1:1,nats://h2:2") == "nats://<redacted>@h1:1,nats://h2:2");
  CHECK(redact_userinfo_in_text("connect failed (nats://alice:s3cret@10.0.0.1:4222): refused") ==
        "connect failed (nats://<redacted>@10.0.0.1:4222): refused");
  CHECK(redact_userinfo_in_text("no url here") == "no url here");
  CHECK(redact_userinfo_in_text("dial nats://bob:pa/ss@h:4222 failed") == "dial nats://<redacted>@h:4222 failed");
  CHECK(redact_userinfo_in_text("nats://carol:p#w@h:4222: timeout").find("p#w") == std::string::npos);
}

TEST_CASE("check-config output shows NATS URLs without their credentials") {
  auto loaded = parse(R"(
[nats]
urls = ["nats://replicator:hunter2-pw@nats-0:4222", "nats://nats-1:4222"]
)", "t.toml");
  CHECK(loaded.cfg.queue.nats.urls.front() == "nats://replicator:hunter2-pw@nats-0:4222");  // still used to connect
  CHECK(loaded.effective_toml.find("hunter2-pw") == std::string::npos);
  CHECK(loaded.effective_toml.find("nats://<redacted>@nats-0:4222") != std::string::npos);
}

TEST_CASE("fs permission modes are octal strings with private defaults") {
  auto loaded = parse(R"(
[stores.a]
type = "fs"
root = "/srv/a"
[stores.b]
type = "fs"
root = "/srv/b"
file_mode = "0640"
dir_mode = "0750"
)", "t.toml");
  auto& a = std::get<fs_store_config>(loaded.cfg.stores.at("a"));
  auto& b = std::get<fs_store_config>(loaded.cfg.stores.at("b"));
  CHECK(a.file_mode == 0600);
  CHECK(a.dir_mode == 0700);
  CHECK(b.file_mode == 0640);
  CHECK(b.dir_mode == 0750);
  CHECK_THROWS_AS(parse("[stores.c]\ntype = \"fs\"\nroot = \"/x\"\nfile_mode = \"0999\"\n", "t.toml"), config_error);
}
