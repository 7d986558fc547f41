// The convergence rounds without servers: a fake source that a test changes between and
// during requests (a concurrent writer), fake destinations with exact faults. Each case
// names the rule it holds.
#include "engine/convergence.hpp"
#include "engine/record_policy.hpp"
#include "support/fake_stores.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <doctest/doctest.h>

#include <optional>

namespace asio = boost::asio;
using namespace archie;
using engine::convergence_result;
using queue::message_outcome;
using store::error_kind;
using testing::fake_destination;
using testing::fake_source;
using testing::pattern;

namespace {

constexpr std::size_t part = 1024;

// A source, two destinations and the machinery to converge one key across them.
struct rig {
  asio::io_context io;
  pipe::part_buffer_pool pool{io.get_executor(), part, 8 * part};
  engine::convergence_limits limits{part, 2, 5};
  fake_source src;
  fake_destination a{"a"}, b{"b"};
  testing::fake_catalog stores;

  rig() {
    src.put(pattern(3 * part + 10, 1), "v1");  // four parts: the copy goes through the pipe
    stores.sources["src"] = &src;
    stores.destinations["a"] = &a;
    stores.destinations["b"] = &b;
  }

  engine::convergence_job job(bool copy = true) {
    engine::convergence_job j;
    j.bucket = "photos";
    j.key = "k";
    j.source_store = "src";
    if (copy) {
      j.start = engine::source_state{true, src.info()};
      j.start.info.tagging = src.tags;  // as read_source reads them
    }
    j.targets = {{"a", "backup", "k"}, {"b", "backup", "k"}};
    return j;
  }

  convergence_result run(engine::convergence_job j) {
    std::optional<convergence_result> out;
    std::exception_ptr failure;
    asio::co_spawn(io, engine::converge(io.get_executor(), pool, stores, limits, j),
                   [&](std::exception_ptr e, convergence_result r) {
                     failure = e;
                     out = std::move(r);
                   });
    io.run();
    io.restart();
    if (failure) std::rethrow_exception(failure);
    CHECK(pool.in_use() == 0);  // every buffer back, whatever happened
    return std::move(*out);
  }

  // The destination holds the source's current bytes under the source's current ETag.
  bool holds_current(const fake_destination& d) const {
    const auto* o = d.find("backup", "k");
    if (!o || o->bytes != src.data) return false;
    const std::string* marker = o->meta.metadata(store::source_etag_metadata);
    return marker && *marker == src.etag && o->meta.tagging == src.tags;
  }
};

}  // namespace

TEST_CASE("a source that holds still is written once to every destination and checked once") {
  rig r;
  auto res = r.run(r.job());
  CHECK_FALSE(res.failure);
  CHECK(res.wrote);
  CHECK(res.rounds == 1);
  CHECK(r.holds_current(r.a));
  CHECK(r.holds_current(r.b));
  CHECK(r.src.heads == 1);  // the re-check after writing
  CHECK(r.src.bytes_read == r.src.data.size());  // read once for both destinations
}

TEST_CASE("a version replaced mid-copy (412 on a part) is read again and the new version is written") {
  rig r;
  r.src.before_read = [](fake_source& s) {
    if (s.reads == 2) s.put(pattern(2 * part, 2), "v2");  // after the first part arrived
  };
  auto res = r.run(r.job());
  CHECK_FALSE(res.failure);
  CHECK(res.rounds == 2);
  CHECK(res.final_state.info.etag == "v2");
  CHECK(r.holds_current(r.a));
  CHECK(r.holds_current(r.b));
}

TEST_CASE("a versioned source is read by version ID: every part and tag read names the version copied") {
  rig r;
  r.src.version_id = "v-v1";
  r.src.tags = "a=1";
  r.src.before_read = [](fake_source& s) {
    if (s.reads == 2) s.put(pattern(2 * part, 2), "v2");  // the version being read goes away
  };
  auto res = r.run(r.job());
  CHECK_FALSE(res.failure);
  CHECK(res.rounds == 2);
  CHECK(r.holds_current(r.a));
  CHECK(r.holds_current(r.b));
  REQUIRE_FALSE(r.src.versions_asked.empty());
  for (const auto& v : r.src.versions_asked) CHECK((v == "v-v1" || v == "v-v2"));
  CHECK(r.src.versions_asked.back() == "v-v2");  // the re-check's tag read: the current version
}

TEST_CASE("a change after the write is caught by the re-check and written in a second round") {
  rig r;
  r.src.before_head = [](fake_source& s) {
    if (s.heads == 1) s.put(pattern(part / 2, 3), "v3");
  };
  auto res = r.run(r.job());
  CHECK_FALSE(res.failure);
  CHECK(res.rounds == 2);
  CHECK(r.holds_current(r.a));
  CHECK(r.holds_current(r.b));
}

TEST_CASE("a source removed mid-copy converges to absent: the destinations are removed") {
  rig r;
  r.b.objects["backup/k"] = {pattern(10), {}};  // an older copy
  r.src.before_read = [](fake_source& s) {
    if (s.reads == 2) s.remove();
  };
  auto res = r.run(r.job());
  CHECK_FALSE(res.failure);
  CHECK_FALSE(res.final_state.exists);
  CHECK(r.a.find("backup", "k") == nullptr);
  CHECK(r.b.find("backup", "k") == nullptr);
}

TEST_CASE("a source that changes after every write is given a rest after the round limit") {
  rig r;
  unsigned version = 1;
  r.src.before_head = [&version](fake_source& s) {
    ++version;
    s.put(pattern(part, version), "v" + std::to_string(version));
  };
  auto res = r.run(r.job());
  REQUIRE(res.failure);
  CHECK(res.failure->what == message_outcome::kind::nak);
  CHECK(res.failure->code == "source_churn");
  CHECK(res.rounds == r.limits.max_rounds);
}

TEST_CASE("a destination that holds the version is not written again unless forced") {
  rig r;
  r.run(r.job());
  r.a.begins = r.b.begins = 0;
  auto again = r.run(r.job());  // a redelivery: asks each destination first
  CHECK_FALSE(again.failure);
  CHECK_FALSE(again.wrote);
  CHECK(r.a.begins == 0);
  CHECK(r.b.begins == 0);
  auto forced = r.job();
  forced.force = true;  // a metadata event
  CHECK(r.run(forced).wrote);
  CHECK(r.a.begins == 1);
}

TEST_CASE("a first delivery of a one-part object is copied without asking the destinations") {
  rig r;
  r.src.put(pattern(part / 2, 4), "small");
  auto j = r.job();
  j.likely_missing = true;
  CHECK(r.run(j).wrote);
  CHECK(r.a.infos == 0);
  CHECK(r.b.infos == 0);
  rig large;
  auto lj = large.job();
  lj.likely_missing = true;  // a multipart object asks first: a HEAD costs less than a copy
  large.run(lj);
  CHECK(large.a.infos == 1);
}

TEST_CASE("one destination refusing for good and another failing for now: a nak naming both, the third written") {
  rig r;
  fake_destination c("c");
  r.stores.destinations["c"] = &c;
  r.a.begin_fails = error_kind::permanent;
  r.b.begin_fails = error_kind::retryable;
  auto j = r.job();
  j.targets.push_back({"c", "backup", "k"});
  auto res = r.run(j);
  REQUIRE(res.failure);
  CHECK(res.failure->what == message_outcome::kind::nak);  // the retryable one may pass: no dead letter
  CHECK(res.failure->code == "destination_retryable");
  CHECK(res.failure->reason.find("; ") != std::string::npos);  // both reasons
  CHECK(r.holds_current(c));
}

TEST_CASE("every destination refusing for good ends the message (term)") {
  rig r;
  r.a.begin_fails = error_kind::permanent;
  r.b.refuse_part = 2;
  auto res = r.run(r.job());
  REQUIRE(res.failure);
  CHECK(res.failure->what == message_outcome::kind::term);
  CHECK(res.failure->code == "destination_permanent");
}

TEST_CASE("a source read failing for another reason than a change waits (nak source_...)") {
  rig r;
  r.src.fail_at_offset = part;
  auto res = r.run(r.job());
  REQUIRE(res.failure);
  CHECK(res.failure->what == message_outcome::kind::nak);
  CHECK(res.failure->code == "source_retryable");
  CHECK(r.a.find("backup", "k") == nullptr);  // nothing half-written becomes visible
}

TEST_CASE("a removal removes from every destination; one that fails is retried later") {
  rig r;
  r.a.objects["backup/k"] = {pattern(10), {}};
  r.b.objects["backup/k"] = {pattern(10), {}};
  r.b.remove_fails = error_kind::retryable;
  r.src.remove();
  auto res = r.run(r.job(false));
  REQUIRE(res.failure);
  CHECK(res.failure->code == "destination_retryable");
  CHECK(r.a.find("backup", "k") == nullptr);
}

TEST_CASE("the failure mapping: nothing failed, all permanent, any retryable") {
  using store::store_error;
  std::vector<std::optional<store_error>> none(2);
  CHECK_FALSE(engine::destination_failures_outcome(none));
  std::vector<std::optional<store_error>> perm{testing::injected(error_kind::permanent, "PutObject"), std::nullopt};
  CHECK(engine::destination_failures_outcome(perm)->what == message_outcome::kind::term);
  std::vector<std::optional<store_error>> denied{testing::injected(error_kind::permission, "PutObject")};
  auto o = engine::destination_failures_outcome(denied);
  CHECK(o->what == message_outcome::kind::nak);  // an operator can grant it: nothing is lost
  CHECK(o->code == "destination_permission");
}

TEST_CASE("a removal leaves destinations that keep deletes alone, also when the source vanishes mid-copy") {
  rig r;
  r.a.objects["backup/k"] = {pattern(10), {}};
  r.b.objects["backup/k"] = {pattern(10), {}};
  auto j = r.job(false);
  j.targets[1].keeps_deletes = true;
  r.src.remove();
  auto res = r.run(j);
  CHECK_FALSE(res.failure);
  CHECK(r.a.find("backup", "k") == nullptr);
  CHECK(r.b.find("backup", "k") != nullptr);
  CHECK(r.b.removes == 0);

  rig mid;
  auto mj = mid.job();
  mj.targets[1].keeps_deletes = true;
  mid.src.before_read = [](fake_source& s) {
    if (s.reads == 2) s.remove();
  };
  mid.b.objects["backup/k"] = {pattern(10), {}};
  mid.run(mj);
  CHECK(mid.b.find("backup", "k") != nullptr);
  CHECK(mid.b.removes == 0);
}

TEST_CASE("a tagged object is copied with its tags") {
  rig r;
  r.src.tags = "a=1&b=2";
  auto res = r.run(r.job());
  CHECK_FALSE(res.failure);
  CHECK(r.holds_current(r.a));
  CHECK(r.holds_current(r.b));
  CHECK(r.src.tag_reads == 1);  // the re-check reads them again; nothing else does
}

TEST_CASE("a tag change at the source sets the tags where they differ and copies no bytes") {
  rig r;
  r.run(r.job());
  r.a.begins = r.b.begins = 0;
  r.src.tags = "owner=me";
  auto res = r.run(r.job());
  CHECK_FALSE(res.failure);
  CHECK(res.wrote);
  CHECK(res.tag_writes == 2);
  CHECK(res.copied_bytes == 0);
  CHECK(r.a.begins == 0);
  CHECK(r.b.begins == 0);
  CHECK(r.holds_current(r.a));
  CHECK(r.holds_current(r.b));
  r.src.tags.clear();  // all tags deleted
  auto cleared = r.run(r.job());
  CHECK(cleared.tag_writes == 2);
  CHECK(r.holds_current(r.a));
}

TEST_CASE("new metadata on the same bytes is rewritten in place where the destination can, else copied") {
  rig r;
  r.a.replaces_metadata = true;  // b cannot: it gets the whole object again
  r.run(r.job());
  r.a.begins = r.b.begins = 0;
  r.src.user_metadata = {{"owner", "finance"}};  // a CopyObject REPLACE at the source: same ETag
  r.src.tags = "k=v";
  r.src.last_modified = "later";
  auto res = r.run(r.job());
  CHECK_FALSE(res.failure);
  CHECK(r.a.metadata_replacements == 1);
  CHECK(r.a.begins == 0);  // no bytes to a
  CHECK(r.b.begins == 1);
  CHECK(r.holds_current(r.a));  // marker, metadata and (set after the copy) tags
  CHECK(r.holds_current(r.b));
  REQUIRE(r.a.find("backup", "k"));
  CHECK(*r.a.find("backup", "k")->meta.metadata("owner") == "finance");
}

TEST_CASE("a tag change during the write is caught by the re-check") {
  rig r;
  r.src.before_head = [](fake_source& s) {
    if (s.heads == 1) s.tags = "late=yes";
  };
  auto res = r.run(r.job());
  CHECK_FALSE(res.failure);
  CHECK(res.rounds == 2);
  CHECK(r.holds_current(r.a));
  CHECK(r.holds_current(r.b));
}

TEST_CASE("a destination that cannot take the new tags fails alone; the version it holds stays") {
  rig r;
  r.run(r.job());
  r.src.tags = "x=1";
  r.a.objects.erase("backup/k");  // vanished meanwhile: tag write not found -> whole copy
  auto res = r.run(r.job());
  CHECK_FALSE(res.failure);
  CHECK(r.holds_current(r.a));
  CHECK(r.holds_current(r.b));
}

TEST_CASE("a first delivery skips the search for earlier uploads; a redelivery asks for it; write options reach begin") {
  rig r;
  config::write_options cold;
  cold.storage_class = "COLD";
  auto first = r.job();
  first.likely_missing = true;
  first.earlier_attempt_possible = false;  // a first delivery
  first.targets[0].write = &cold;
  r.run(first);
  CHECK_FALSE(r.a.last_options.earlier_attempt_possible);
  CHECK(r.a.last_options.write == &cold);
  CHECK(r.b.last_options.write == nullptr);
  r.src.put(pattern(3 * part, 9), "v9");
  r.run(r.job());  // a redelivery
  CHECK(r.a.last_options.earlier_attempt_possible);
}
