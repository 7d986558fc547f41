// The replicator's decisions per event, over fake stores: MinIO's own event payloads (the
// fixtures) in, the acknowledgement and the destinations' contents out.
#include "engine/replicator.hpp"
#include "support/fake_stores.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <doctest/doctest.h>
#include <nats/nats.h>

#include <fstream>
#include <iterator>
#include <optional>

#ifndef ARCHIE_EVENT_FIXTURES_DIR
#define ARCHIE_EVENT_FIXTURES_DIR "tests/fixtures/events"
#endif

namespace asio = boost::asio;
using namespace archie;
using queue::message_outcome;
using testing::fake_destination;
using testing::fake_source;
using testing::pattern;

namespace {

std::string fixture(const char* name) {
  std::ifstream in(std::string(ARCHIE_EVENT_FIXTURES_DIR) + "/" + name, std::ios::binary);
  REQUIRE(in);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Route photos -> a:backup. The fixtures' key is 2026/11/cat.jpg in bucket photos.
struct rig {
  asio::io_context io;
  fake_source src;
  fake_destination a{"a"};
  testing::fake_catalog stores;
  config::config cfg;
  std::optional<engine::replicator> replicator;

  explicit rig(std::size_t budget_mib = 4) {
    stores.sources["src"] = &src;
    stores.destinations["a"] = &a;
    config::route_config route;
    route.source = {"src", "photos", ""};
    route.destinations = {{"a", "backup", ""}};
    cfg.routes = {route};
    cfg.replication.part_size_mib = 1;
    cfg.replication.buffer_budget_mib = static_cast<std::int64_t>(budget_mib);
    replicator.emplace(io.get_executor(), cfg, stores);
  }

  message_outcome handle(const std::string& payload) {
    natsMsg* raw = nullptr;
    REQUIRE(natsMsg_Create(&raw, "minio.events", nullptr, payload.data(), static_cast<int>(payload.size())) == NATS_OK);
    queue::queue_message msg(raw);
    std::optional<message_outcome> out;
    asio::co_spawn(io, replicator->handle(msg), [&](std::exception_ptr e, message_outcome o) {
      REQUIRE_FALSE(e);
      out = std::move(o);
    });
    io.run_for(std::chrono::seconds(60));  // a stuck copy fails here rather than hanging the suite
    io.restart();
    REQUIRE(out);
    return *out;
  }

  // What the destination holds for the fixtures' key, marked with this ETag.
  bool holds(const std::vector<std::byte>& bytes, const std::string& etag) const {
    const auto* o = a.find("backup", "2026/11/cat.jpg");
    if (!o || o->bytes != bytes) return false;
    const std::string* marker = o->meta.metadata(store::source_etag_metadata);
    return marker && *marker == etag;
  }
};

}  // namespace

TEST_CASE("a delete that uncovers an older version at the source brings that version to the destinations") {
  rig r;
  // The destination has v2; v2 was deleted for good at the source and v1 is current again.
  r.a.objects["backup/2026/11/cat.jpg"] = {pattern(100, 2), {}};
  r.a.objects["backup/2026/11/cat.jpg"].meta.user_metadata = {{store::source_etag_metadata, "v2"}};
  r.src.put(pattern(300, 1), "v1");
  auto o = r.handle(fixture("delete.json"));
  CHECK(o.what == message_outcome::kind::ack);
  CHECK(o.code == "copied");
  CHECK(r.holds(pattern(300, 1), "v1"));
}

TEST_CASE("a stale delete whose key every destination already holds writes nothing") {
  rig r;
  r.src.put(pattern(300, 1), "v1");
  CHECK(r.handle(fixture("put.json")).code == "copied");
  r.a.begins = 0;
  auto o = r.handle(fixture("delete.json"));
  CHECK(o.code == "stale_delete");
  CHECK_FALSE(o.confirm);
  CHECK(r.a.begins == 0);
  CHECK(r.holds(pattern(300, 1), "v1"));
}

TEST_CASE("a delete of a key the source no longer has removes the replica") {
  rig r;
  r.a.objects["backup/2026/11/cat.jpg"] = {pattern(100, 2), {}};
  r.src.remove();
  auto o = r.handle(fixture("delete.json"));
  CHECK(o.code == "removed");
  CHECK(r.a.find("backup", "2026/11/cat.jpg") == nullptr);
}

TEST_CASE("a put whose object is gone waits for the source (nak), and a malformed event ends (term)") {
  rig r;
  r.src.remove();
  auto o = r.handle(fixture("put.json"));
  CHECK(o.what == message_outcome::kind::nak);
  CHECK(o.code == "source_not_found");
  auto bad = r.handle(fixture("bad-no-records.json"));
  CHECK(bad.what == message_outcome::kind::term);
  CHECK(bad.code == "malformed_event");
}

TEST_CASE("a large object's first part comes with its metadata in one GET and is not read twice") {
  // A budget of one part: a copy that kept a second reference to its first part would wait
  // for its next part forever.
  rig r(1);
  const auto bytes = pattern(2 * 1024 * 1024 + 512 * 1024, 3);
  r.src.put(bytes, "v-large");
  std::string payload = fixture("put.json");
  const std::string size_field = "\"size\":48213";
  REQUIRE(payload.find(size_field) != std::string::npos);
  payload.replace(payload.find(size_field), size_field.size(), "\"size\":" + std::to_string(bytes.size()));
  CHECK(r.handle(payload).code == "copied");
  CHECK(r.holds(bytes, "v-large"));
  CHECK(r.src.heads == 1);                  // only the check after writing
  CHECK(r.src.bytes_read == bytes.size());  // every byte read once
}

TEST_CASE("a tag event sets the new tags without reading or copying the bytes") {
  rig r;
  r.src.put(pattern(300, 1), "v1");
  CHECK(r.handle(fixture("put.json")).code == "copied");
  const int reads = r.src.reads, begins = r.a.begins;
  r.src.tags = "class=gold";
  auto o = r.handle(fixture("put-tagging.json"));
  CHECK(o.code == "copied");
  CHECK(r.src.reads == reads);  // a HEAD, not a GET of the bytes
  CHECK(r.a.begins == begins);
  CHECK(r.a.tag_sets == 1);
  CHECK(r.a.find("backup", "2026/11/cat.jpg")->meta.tagging == "class=gold");
}
