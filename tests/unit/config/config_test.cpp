#include "config/config.hpp"

#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <unistd.h>
#include <fstream>
#include <string>
#include <utility>
#include <variant>

using archie::config::config_error;
using archie::config::describe;
using archie::config::parse;

namespace {

// Parses text expected to be invalid and returns every problem as "path: reason" lines.
std::string problems_of(const std::string& text) {
  try {
    parse(text, "test.toml");
  } catch (const config_error& e) {
    return describe(e);
  }
  FAIL("config was accepted: " << text);
  return {};
}

const char* minimal_s3_store = R"(
[stores.dst]
type = "s3"
endpoint = "http://127.0.0.1:7480"
access_key_id = "AKID"
secret_access_key = "s3cr3t-value"
)";

}  // namespace

TEST_CASE("an empty config is valid and every default appears in the effective config") {
  auto loaded = parse("", "empty.toml");
  CHECK(loaded.cfg.worker.concurrency == 16);
  CHECK(loaded.cfg.http.port == 9090);
  CHECK(loaded.cfg.queue.consumer.max_deliver == -1);
  CHECK(loaded.effective_toml.find("concurrency = 16") != std::string::npos);
  CHECK(loaded.effective_toml.find("ack_wait = '1m'") != std::string::npos);
  CHECK(loaded.effective_toml.find("shutdown_wait = '30s'") != std::string::npos);
}

TEST_CASE("given values override defaults") {
  auto loaded = parse(R"(
[worker]
concurrency = 64
shutdown_wait = "5s"
[queue.consumer]
ack_wait = "2m"
)", "t.toml");
  CHECK(loaded.cfg.worker.concurrency == 64);
  CHECK(loaded.cfg.worker.shutdown_wait == std::chrono::seconds(5));
  CHECK(loaded.cfg.queue.consumer.ack_wait == std::chrono::minutes(2));
}

TEST_CASE("an unknown key is rejected with its path, line and a suggestion") {
  auto p = problems_of("[worker]\nconcurency = 4\n");
  CHECK(p.find("test.toml:2: worker.concurency: unknown key") != std::string::npos);
  CHECK(p.find("did you mean \"concurrency\"") != std::string::npos);
}

TEST_CASE("an unknown top-level table is rejected") {
  CHECK(problems_of("[nonsense]\nx = 1\n").find("nonsense: unknown key") != std::string::npos);
}

TEST_CASE("a wrong type is rejected naming the key, the expected and the actual type") {
  auto p = problems_of("[worker]\nconcurrency = \"many\"\n");
  CHECK(p.find("worker.concurrency: expected an integer, got a string") != std::string::npos);
}

TEST_CASE("an out-of-range value is rejected with the allowed range") {
  CHECK(problems_of("[worker]\nconcurrency = 0\n").find("worker.concurrency: must be between 1 and 4096, got 0") !=
        std::string::npos);
  CHECK(problems_of("[http]\nport = 70000\n").find("http.port: must be between 0 and 65535") != std::string::npos);
  CHECK(problems_of("[queue.consumer]\nack_wait = \"100ms\"\n").find("queue.consumer.ack_wait: must be between 1s") !=
        std::string::npos);
}

TEST_CASE("an s3 store reads one part per GET unless parts_per_get says more") {
  auto loaded = parse(minimal_s3_store, "t.toml");
  CHECK(std::get<archie::config::s3_store_config>(loaded.cfg.stores.at("dst")).parts_per_get == 1);
  auto more = parse(std::string(minimal_s3_store) + "parts_per_get = 8\n", "t.toml");
  CHECK(std::get<archie::config::s3_store_config>(more.cfg.stores.at("dst")).parts_per_get == 8);
  CHECK(problems_of(std::string(minimal_s3_store) + "parts_per_get = 0\n")
            .find("stores.dst.parts_per_get: must be between 1 and 256, got 0") != std::string::npos);
}

TEST_CASE("a malformed duration says how to write one") {
  auto p = problems_of("[worker]\nshutdown_wait = \"30\"\n");
  CHECK(p.find("worker.shutdown_wait: \"30\" is not a duration") != std::string::npos);
}

TEST_CASE("an enum value outside its choices lists the choices") {
  auto p = problems_of("[log]\nlevel = \"loud\"\n");
  CHECK(p.find("log.level: must be one of trace, debug, info, warn, error, got \"loud\"") != std::string::npos);
  CHECK(problems_of("[queue.stream]\nretention = \"forever\"\n").find("queue.stream.retention") != std::string::npos);
}

TEST_CASE("every problem in a file is reported at once") {
  auto p = problems_of("[worker]\nconcurrency = 0\n[http]\nport = -1\n[log]\nlevel = 3\n");
  CHECK(p.find("worker.concurrency") != std::string::npos);
  CHECK(p.find("http.port") != std::string::npos);
  CHECK(p.find("log.level") != std::string::npos);
}

TEST_CASE("a TOML syntax error names the line") {
  auto p = problems_of("[worker\nconcurrency = 1\n");
  CHECK(p.find("test.toml:1: (syntax)") != std::string::npos);
}

TEST_CASE("a store without a type or with an unknown type is rejected") {
  CHECK(problems_of("[stores.x]\nroot = \"/tmp\"\n").find("stores.x.type: is required") != std::string::npos);
  CHECK(problems_of("[stores.x]\ntype = \"ftp\"\n").find("stores.x.type: must be one of s3, gcs, fs") !=
        std::string::npos);
}

TEST_CASE("an s3 store with credentials = static but no keys names each missing key") {
  auto p = problems_of("[stores.dst]\ntype = \"s3\"\nendpoint = \"http://h:1\"\ncredentials = \"static\"\n");
  CHECK(p.find("stores.dst.access_key_id: is required") != std::string::npos);
  CHECK(p.find("stores.dst.secret_access_key: is required") != std::string::npos);
}

TEST_CASE("an s3 store without keys uses the credential chain, and check-config shows the mode") {
  auto loaded = parse("[stores.dst]\ntype = \"s3\"\nendpoint = \"http://h:1\"\n", "t.toml");
  const auto& s3 = std::get<archie::config::s3_store_config>(loaded.cfg.stores.at("dst"));
  CHECK(s3.credentials == archie::config::s3_credentials::chain);
  CHECK(loaded.effective_toml.find("credentials = 'chain'") != std::string::npos);
}

TEST_CASE("an s3 store with keys uses them (static), and check-config shows the mode but not the keys") {
  auto loaded = parse(minimal_s3_store, "t.toml");
  const auto& s3 = std::get<archie::config::s3_store_config>(loaded.cfg.stores.at("dst"));
  CHECK(s3.credentials == archie::config::s3_credentials::static_keys);
  CHECK(loaded.effective_toml.find("credentials = 'static'") != std::string::npos);
  CHECK(loaded.effective_toml.find("s3cr3t-value") == std::string::npos);
}

TEST_CASE("each s3 credentials mode is parsed from its TOML name, and a typo is refused") {
  using archie::config::s3_credentials;
  for (auto [name, mode] : {std::pair{"env", s3_credentials::env}, std::pair{"profile", s3_credentials::profile},
                            std::pair{"web_identity", s3_credentials::web_identity},
                            std::pair{"container", s3_credentials::container}, std::pair{"imds", s3_credentials::imds},
                            std::pair{"chain", s3_credentials::chain}}) {
    auto loaded = parse(std::string("[stores.dst]\ntype = \"s3\"\nendpoint = \"http://h:1\"\ncredentials = \"") +
                            name + "\"\n",
                        "t.toml");
    CHECK(std::get<archie::config::s3_store_config>(loaded.cfg.stores.at("dst")).credentials == mode);
  }
  CHECK(problems_of("[stores.dst]\ntype = \"s3\"\nendpoint = \"http://h:1\"\ncredentials = \"irsa\"\n")
            .find("stores.dst.credentials") != std::string::npos);
}

TEST_CASE("keys in a store that fetches its credentials elsewhere are refused, not silently ignored") {
  std::string text = std::string(minimal_s3_store) + "credentials = \"web_identity\"\n";
  CHECK(problems_of(text).find("stores.dst.credentials: keys are set in the store") != std::string::npos);
}

TEST_CASE("an sts_endpoint must be an http(s) URL") {
  CHECK(problems_of("[stores.dst]\ntype = \"s3\"\nendpoint = \"http://h:1\"\nsts_endpoint = \"sts.local\"\n")
            .find("stores.dst.sts_endpoint: must start with http") != std::string::npos);
}

TEST_CASE("an s3 endpoint without a scheme is rejected") {
  auto p = problems_of("[stores.dst]\ntype = \"s3\"\nendpoint = \"minio:9000\"\naccess_key_id = \"a\"\nsecret_access_key = \"b\"\n");
  CHECK(p.find("stores.dst.endpoint: must start with http:// or https://") != std::string::npos);
}

TEST_CASE("an fs store needs an absolute root") {
  CHECK(problems_of("[stores.local]\ntype = \"fs\"\nroot = \"relative/dir\"\n").find("stores.local.root") !=
        std::string::npos);
}

TEST_CASE("secrets are redacted in the effective config and never echoed in errors") {
  auto loaded = parse(minimal_s3_store, "t.toml");
  const auto& s3 = std::get<archie::config::s3_store_config>(loaded.cfg.stores.at("dst"));
  CHECK(s3.secret_access_key.reveal() == "s3cr3t-value");
  CHECK(loaded.effective_toml.find("s3cr3t-value") == std::string::npos);
  CHECK(loaded.effective_toml.find("<redacted, inline>") != std::string::npos);

  auto p = problems_of(std::string(minimal_s3_store) + "secret_access_key_env = \"X\"\n");
  CHECK(p.find("set only one of secret_access_key") != std::string::npos);
  CHECK(p.find("s3cr3t-value") == std::string::npos);
}

TEST_CASE("a secret can come from an environment variable") {
  ::setenv("ARCHIE_TEST_SECRET", "from-env-value", 1);
  auto loaded = parse(R"(
[nats]
token_env = "ARCHIE_TEST_SECRET"
)", "t.toml");
  CHECK(loaded.cfg.queue.nats.token.reveal() == "from-env-value");
  CHECK(loaded.cfg.queue.nats.token.origin() == "env ARCHIE_TEST_SECRET");
  CHECK(loaded.effective_toml.find("from-env-value") == std::string::npos);
  ::unsetenv("ARCHIE_TEST_SECRET");
  CHECK(problems_of("[nats]\ntoken_env = \"ARCHIE_TEST_SECRET\"\n")
            .find("nats.token_env: environment variable ARCHIE_TEST_SECRET is not set") != std::string::npos);
}

TEST_CASE("a secret can come from a mounted file, trailing newline dropped") {
  std::string path = "/tmp/archie-config-test-secret." + std::to_string(::getpid());
  std::ofstream(path) << "file-secret\n";
  auto loaded = parse("[nats]\nuser = \"u\"\npassword_file = \"" + path + "\"\n", "t.toml");
  CHECK(loaded.cfg.queue.nats.password.reveal() == "file-secret");
  std::remove(path.c_str());
  CHECK(problems_of("[nats]\nuser = \"u\"\npassword_file = \"" + path + "\"\n").find("nats.password_file: cannot read") !=
        std::string::npos);
}

TEST_CASE("conflicting nats authentication methods are rejected") {
  auto p = problems_of("[nats]\nuser = \"u\"\npassword = \"p\"\ntoken = \"t\"\n");
  CHECK(p.find("nats.user: choose one authentication method") != std::string::npos);
}

TEST_CASE("illegal consumer combinations are rejected before reaching the server") {
  CHECK(problems_of("[queue.consumer]\nmax_deliver = 0\n").find("queue.consumer.max_deliver: 0 is not allowed") !=
        std::string::npos);
  CHECK(problems_of("[queue.consumer]\nmax_deliver = 2\nbackoff = [\"1s\", \"2s\", \"3s\"]\n")
            .find("queue.consumer.backoff: has more steps than max_deliver") != std::string::npos);
}

TEST_CASE("a missing config file is a config error naming the file") {
  try {
    archie::config::load_file("/nonexistent/archie.toml");
    FAIL("accepted a missing file");
  } catch (const config_error& e) {
    CHECK(describe(e).find("/nonexistent/archie.toml") != std::string::npos);
  }
}

TEST_CASE("an empty required secret is rejected") {
  auto p = problems_of("[stores.dst]\ntype = \"s3\"\nendpoint = \"http://h:1\"\naccess_key_id = \"\"\nsecret_access_key = \"x\"\n");
  CHECK(p.find("stores.dst.access_key_id: must not be empty") != std::string::npos);
}

TEST_CASE("a nats password without a user is rejected") {
  CHECK(problems_of("[nats]\npassword = \"p\"\n").find("nats.password: is set without user") != std::string::npos);
}

TEST_CASE("a dead-letter subject captured by the event stream is rejected") {
  auto p = problems_of("[queue]\ndead_letter_subject = \"minio.dead\"\n[queue.stream]\nsubjects = [\"minio.>\"]\n");
  CHECK(p.find("queue.dead_letter_subject: \"minio.dead\" is captured by the stream's subject \"minio.>\"") !=
        std::string::npos);
  CHECK_NOTHROW(parse("[queue]\ndead_letter_subject = \"archie.dead\"\n[queue.stream]\nsubjects = [\"minio.*\"]\n", "t"));
  CHECK(problems_of("[queue]\ndead_letter_subject = \"minio.events\"\n").find("dead_letter_subject") != std::string::npos);
}

TEST_CASE("a consumer backoff must start at ack_wait") {
  auto p = problems_of("[queue.consumer]\nack_wait = \"30s\"\nbackoff = [\"1s\", \"10s\"]\n");
  CHECK(p.find("queue.consumer.backoff: backoff[0] must equal ack_wait") != std::string::npos);
}

TEST_CASE("routes must name defined stores, an s3 source and valid patterns") {
  std::string stores = std::string(minimal_s3_store) + "[stores.local]\ntype = \"fs\"\nroot = \"/tmp\"\n";
  auto p = problems_of(stores + "[[route]]\nsource = { store = \"nope\", bucket = \"b\" }\n"
                                "[[route.destinations]]\nstore = \"dst\"\nbucket = \"c\"\n");
  CHECK(p.find("route[1].source.store: no store named \"nope\"") != std::string::npos);
  p = problems_of(stores + "[[route]]\nsource = { store = \"local\", bucket = \"b\" }\n"
                           "[[route.destinations]]\nstore = \"dst\"\nbucket = \"c\"\n");
  CHECK(p.find("route[1].source.store: a route source must be an s3 store") != std::string::npos);
  p = problems_of(stores + "[[route]]\nsource = { store = \"dst\", bucket = \"b\" }\nexclude_copy = [\"(unclosed\"]\n"
                           "[[route.destinations]]\nstore = \"local\"\nbucket = \"c\"\n");
  CHECK(p.find("route[1].exclude_copy: pattern 1 \"(unclosed\" is invalid") != std::string::npos);
  p = problems_of(stores + "[[route]]\nsource = { store = \"dst\", bucket = \"b\" }\n");
  CHECK(p.find("route[1].destinations: needs at least one destination") != std::string::npos);
  auto ok = parse(stores + "[[route]]\nsource = { store = \"dst\", bucket = \"b\", prefix = \"in/\" }\n"
                           "[[route.destinations]]\nstore = \"local\"\nbucket = \"c\"\nprefix = \"out/\"\n", "t");
  REQUIRE(ok.cfg.routes.size() == 1);
  CHECK(ok.cfg.routes[0].destinations[0].prefix == "out/");
}

TEST_CASE("check-config prints floats as they are written") {
  auto loaded = parse("[queue.nak_backoff]\njitter = 0.2\nmultiplier = 1.5\n", "t.toml");
  CHECK(loaded.effective_toml.find("jitter = 0.2\n") != std::string::npos);
  CHECK(loaded.effective_toml.find("multiplier = 1.5\n") != std::string::npos);
  CHECK(loaded.effective_toml.find("0.20000000000000001") == std::string::npos);
}

namespace {
// Two S3 stores on one endpoint (other credentials: the same place) and one on another.
const char* overlap_stores = R"(
[stores.minio]
type = "s3"
endpoint = "http://127.0.0.1:7480"
access_key_id = "AKID"
secret_access_key = "s3cr3t-value"
[stores.minio_other_keys]
type = "s3"
endpoint = "http://127.0.0.1:7480/"
access_key_id = "AKID2"
secret_access_key = "s3cr3t-value2"
[stores.backup]
type = "s3"
endpoint = "http://127.0.0.1:7481"
access_key_id = "AKID3"
secret_access_key = "s3cr3t-value3"
)";

std::string route_text(const std::string& src_store, const std::string& src_bucket, const std::string& src_prefix,
                       const std::string& dst_store, const std::string& dst_bucket, const std::string& dst_prefix) {
  return "[[route]]\nsource = { store = \"" + src_store + "\", bucket = \"" + src_bucket + "\", prefix = \"" +
         src_prefix + "\" }\n[[route.destinations]]\nstore = \"" + dst_store + "\"\nbucket = \"" + dst_bucket +
         "\"\nprefix = \"" + dst_prefix + "\"\n";
}
}  // namespace

TEST_CASE("two routes writing into overlapping key ranges are refused, naming both") {
  // Route 1 mirrors bucket x into all of d; route 2 writes y/ keys of bucket y into d too.
  auto p = problems_of(std::string(overlap_stores) + route_text("minio", "x", "", "backup", "d", "") +
                       route_text("minio", "y", "y/", "backup", "d", "y/"));
  CHECK(p.find("route[2].destinations[1]: writes into the same keys as route[1].destinations[1]") != std::string::npos);
  // Another store name for the same endpoint is the same place.
  p = problems_of(std::string(overlap_stores) + route_text("backup", "x", "", "minio", "d", "a/") +
                  route_text("backup", "y", "", "minio_other_keys", "d", "a/b/"));
  CHECK(p.find("writes into the same keys") != std::string::npos);
}

TEST_CASE("a destination inside a source range that leads back to it is refused as a copy loop") {
  auto p = problems_of(std::string(overlap_stores) + route_text("minio", "x", "", "minio", "x", "backup/"));
  CHECK(p.find("route[1].destinations[1]: lies inside the route's own source range") != std::string::npos);
  p = problems_of(std::string(overlap_stores) + route_text("minio", "x", "", "backup", "y", "") +
                  route_text("backup", "y", "", "minio", "x", "copies/"));
  CHECK(p.find("replicas would be copied in a loop") != std::string::npos);
}

TEST_CASE("routes with disjoint destination prefixes, chains and same-bucket prefixes are accepted") {
  CHECK_NOTHROW(parse(std::string(overlap_stores) + route_text("minio", "x", "", "backup", "d", "x/") +
                          route_text("minio", "y", "", "backup", "d", "y/"),
                      "t"));
  // A chain is not a loop: x -> y, y -> z.
  CHECK_NOTHROW(parse(std::string(overlap_stores) + route_text("minio", "x", "", "backup", "y", "") +
                          route_text("backup", "y", "", "minio", "z", ""),
                      "t"));
  // The same bucket as source and destination, in ranges that do not meet.
  CHECK_NOTHROW(parse(std::string(overlap_stores) + route_text("minio", "x", "live/", "minio", "x", "archive/"), "t"));
}

TEST_CASE("a store endpoint with credentials in it is refused without showing them") {
  auto p = problems_of(R"(
[stores.dst]
type = "s3"
endpoint = "http://user:sup3r-secret@127.0.0.1:7480"
access_key_id = "AKID"
secret_access_key = "s3cr3t-value"
)");
  CHECK(p.find("stores.dst.endpoint: must not carry credentials") != std::string::npos);
  CHECK(p.find("sup3r-secret") == std::string::npos);
  p = problems_of("[stores.g]\ntype = \"gcs\"\nendpoint = \"https://k:pw@storage.example\"\ncredentials = \"metadata\"\n");
  CHECK(p.find("stores.g.endpoint: must not carry credentials") != std::string::npos);
  CHECK(p.find(":pw") == std::string::npos);
}

TEST_CASE("a destination may keep what the source deletes; a source may not say so; other words are refused") {
  std::string stores = std::string(minimal_s3_store) + "[stores.local]\ntype = \"fs\"\nroot = \"/tmp\"\n";
  auto ok = parse(stores + "[[route]]\nsource = { store = \"dst\", bucket = \"b\" }\n"
                           "[[route.destinations]]\nstore = \"local\"\nbucket = \"c\"\ndeletes = \"ignore\"\n"
                           "[[route.destinations]]\nstore = \"local\"\nbucket = \"d\"\n", "t");
  REQUIRE(ok.cfg.routes.size() == 1);
  CHECK(ok.cfg.routes[0].destinations[0].deletes == archie::config::deletes_policy::ignore);
  CHECK(ok.cfg.routes[0].destinations[1].deletes == archie::config::deletes_policy::propagate);
  CHECK(ok.effective_toml.find("deletes = 'propagate'") != std::string::npos);
  auto p = problems_of(stores + "[[route]]\nsource = { store = \"dst\", bucket = \"b\", deletes = \"ignore\" }\n"
                                "[[route.destinations]]\nstore = \"local\"\nbucket = \"c\"\n");
  CHECK(p.find("route[1].source.deletes") != std::string::npos);
  p = problems_of(stores + "[[route]]\nsource = { store = \"dst\", bucket = \"b\" }\n"
                           "[[route.destinations]]\nstore = \"local\"\nbucket = \"c\"\ndeletes = \"keep\"\n");
  CHECK(p.find("route[1].destinations[1].deletes") != std::string::npos);
}

TEST_CASE("versions = \"all\" is taken by s3 and gcs destinations and refused by name for directories") {
  std::string stores = std::string(minimal_s3_store) + "[stores.local]\ntype = \"fs\"\nroot = \"/tmp\"\n" +
                       "[stores.g]\ntype = \"gcs\"\ncredentials = \"metadata\"\n";
  std::string route_head = "[[route]]\nsource = { store = \"dst\", bucket = \"b\" }\n[[route.destinations]]\n";
  auto ok = parse(stores + route_head + "store = \"dst\"\nbucket = \"c\"\nversions = \"all\"\n", "t");
  CHECK(ok.cfg.routes[0].destinations[0].versions == archie::config::versions_policy::all);
  ok = parse(stores + route_head + "store = \"g\"\nbucket = \"c\"\nversions = \"all\"\n", "t");
  CHECK(ok.cfg.routes[0].destinations[0].versions == archie::config::versions_policy::all);
  auto p = problems_of(stores + route_head + "store = \"local\"\nbucket = \"c\"\nversions = \"all\"\n");
  CHECK(p.find("route[1].destinations[1].versions: \"all\" needs an s3 or gcs destination") != std::string::npos);
  p = problems_of(stores + route_head + "store = \"dst\"\nbucket = \"c\"\nversions = \"every\"\n");
  CHECK(p.find("route[1].destinations[1].versions") != std::string::npos);
}

TEST_CASE("a destination's storage class, encryption and ACL are read, and refused where its store has none") {
  std::string stores = std::string(minimal_s3_store) + "[stores.local]\ntype = \"fs\"\nroot = \"/tmp\"\n";
  std::string route_head = "[[route]]\nsource = { store = \"dst\", bucket = \"b\" }\n[[route.destinations]]\n";
  auto ok = parse(stores + route_head +
                      "store = \"dst\"\nbucket = \"c\"\nstorage_class = \"STANDARD_IA\"\n"
                      "server_side_encryption = \"aws:kms\"\nsse_kms_key_id = \"k1\"\nacl = \"bucket-owner-full-control\"\n",
                  "t");
  const auto& w = ok.cfg.routes[0].destinations[0].write;
  CHECK(w.storage_class == "STANDARD_IA");
  CHECK(w.server_side_encryption == "aws:kms");
  CHECK(w.sse_kms_key_id == "k1");
  CHECK(w.acl == "bucket-owner-full-control");
  auto p = problems_of(stores + route_head + "store = \"local\"\nbucket = \"c\"\nstorage_class = \"COLD\"\n");
  CHECK(p.find("route[1].destinations[1].storage_class: applies to s3 and gcs destinations only") != std::string::npos);
  p = problems_of(stores + route_head + "store = \"dst\"\nbucket = \"c\"\nserver_side_encryption = \"aes\"\n");
  CHECK(p.find("server_side_encryption: must be \"AES256\" or \"aws:kms\"") != std::string::npos);
  p = problems_of(stores + route_head + "store = \"dst\"\nbucket = \"c\"\nsse_kms_key_id = \"k\"\n");
  CHECK(p.find("sse_kms_key_id: needs server_side_encryption = \"aws:kms\"") != std::string::npos);
  p = problems_of(stores + route_head + "store = \"dst\"\nbucket = \"c\"\nacl = \"everyone\"\n");
  CHECK(p.find("acl: \"everyone\" is not a canned ACL") != std::string::npos);
  p = problems_of(stores + route_head + "store = \"dst\"\nbucket = \"c\"\nkms_key_name = \"projects/p/k\"\n");
  CHECK(p.find("kms_key_name: applies to gcs destinations only") != std::string::npos);
}

TEST_CASE("object lock is copied to s3 destinations by default and refused for others; tags may be ignored") {
  std::string stores = std::string(minimal_s3_store) + "[stores.local]\ntype = \"fs\"\nroot = \"/tmp\"\n";
  std::string route_head = "[[route]]\nsource = { store = \"dst\", bucket = \"b\" }\n[[route.destinations]]\n";
  auto s3 = parse(stores + route_head + "store = \"dst\"\nbucket = \"c\"\ntags = \"ignore\"\n", "t");
  CHECK(s3.cfg.routes[0].destinations[0].write.copy_object_lock);
  CHECK_FALSE(s3.cfg.routes[0].destinations[0].write.copy_tags);
  auto fs = parse(stores + route_head + "store = \"local\"\nbucket = \"c\"\n", "t");
  CHECK_FALSE(fs.cfg.routes[0].destinations[0].write.copy_object_lock);
  CHECK(fs.cfg.routes[0].destinations[0].write.copy_tags);
  auto p = problems_of(stores + route_head + "store = \"local\"\nbucket = \"c\"\nobject_lock = \"copy\"\n");
  CHECK(p.find("object_lock: \"copy\" applies to s3 destinations only") != std::string::npos);
}

TEST_CASE("the worker registry's bucket defaults to the consumer's name, and its TTL must outlast two heartbeats") {
  auto ok = parse(std::string(minimal_s3_store) + "[[route]]\nsource = { store = \"dst\", bucket = \"b\" }\n"
                                                  "[[route.destinations]]\nstore = \"dst\"\nbucket = \"c\"\n",
                  "t");
  CHECK(ok.cfg.fleet.registry_bucket == "archie-fleet-" + ok.cfg.queue.consumer.durable);
  CHECK(ok.cfg.fleet.heartbeat == std::chrono::seconds(5));
  CHECK(ok.cfg.fleet.ttl == std::chrono::seconds(15));
  auto p = problems_of(std::string(minimal_s3_store) + "[fleet]\nheartbeat = \"10s\"\nttl = \"15s\"\n");
  CHECK(p.find("fleet.ttl: must be at least twice fleet.heartbeat") != std::string::npos);
  p = problems_of(std::string(minimal_s3_store) + "[fleet]\nregistry_bucket = \"a.b\"\n");
  CHECK(p.find("fleet.registry_bucket") != std::string::npos);
}
