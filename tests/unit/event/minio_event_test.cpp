#include "event/minio_event.hpp"

#include "event/form_url.hpp"

#include <boost/json.hpp>
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <optional>
#include <random>
#include <string>
#include <vector>

// The meson build points this at the source tree's copy; the default suits a run from the root.
#ifndef ARCHIE_EVENT_FIXTURES_DIR
#define ARCHIE_EVENT_FIXTURES_DIR "tests/fixtures/events"
#endif

namespace ev = archie::event;
namespace json = boost::json;
using ev::event_action;

namespace {

std::string fixture(const std::string& name) {
  std::ifstream in(std::string(ARCHIE_EVENT_FIXTURES_DIR) + "/" + name, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), "missing fixture " << name << " under " << ARCHIE_EVENT_FIXTURES_DIR);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::vector<ev::object_event> events_of(const std::string& payload) {
  auto result = ev::decode_minio_event(payload);
  if (!result) FAIL("unexpected decode_error " << result.error().code << ": " << result.error().reason);
  return std::move(*result);
}

ev::object_event only_event_of(const std::string& payload) {
  auto events = events_of(payload);
  REQUIRE(events.size() == 1);
  return events.front();
}

ev::decode_error error_of(const std::string& payload) {
  auto result = ev::decode_minio_event(payload);
  REQUIRE_MESSAGE(result.has_error(), "payload decoded but should not have");
  return result.error();
}

json::object& object_of(json::value& doc, std::size_t record = 0) {
  return doc.at("Records").at(record).at("s3").at("object").as_object();
}

// put.json with its escaped object key and its envelope Key replaced.
std::string put_with_key(std::string_view escaped_key, std::string_view envelope_key) {
  json::value doc = json::parse(fixture("put.json"));
  object_of(doc)["key"] = escaped_key;
  doc.as_object()["Key"] = envelope_key;
  return json::serialize(doc);
}

std::string with_event_name(const std::string& file, std::string_view name) {
  json::value doc = json::parse(fixture(file));
  doc.at("Records").at(0).as_object()["eventName"] = name;
  return json::serialize(doc);
}

std::string with_size(const json::value& size) {
  json::value doc = json::parse(fixture("put.json"));
  object_of(doc)["size"] = size;
  return json::serialize(doc);
}

bool is_known_error_code(std::string_view code) {
  return std::find(ev::decode_error_codes.begin(), ev::decode_error_codes.end(), code) !=
         ev::decode_error_codes.end();
}

}  // namespace

TEST_CASE("a Put is copy work carrying size, etag, content type, sequencer and metadata") {
  auto e = only_event_of(fixture("put.json"));
  CHECK(e.event_name == "s3:ObjectCreated:Put");
  CHECK(e.action == event_action::copy);
  CHECK(e.bucket == "photos");
  CHECK(e.key == "2026/11/cat.jpg");
  CHECK(e.has_size);
  CHECK(e.size == 48213);
  CHECK(e.etag == "5d41402abc4b2a76b9719d911017c592");
  CHECK(e.content_type == "image/jpeg");
  CHECK(e.version_id.empty());
  CHECK(e.sequencer == "18E91EFD63285400");
  CHECK_FALSE(e.lifecycle_expiry);
  CHECK(e.user_metadata == std::vector<std::pair<std::string, std::string>>{{"content-type", "image/jpeg"}});
  CHECK(e.skip_reason.empty());
}

TEST_CASE("Post, Copy and CompleteMultipartUpload are copy work") {
  auto post = only_event_of(fixture("post.json"));
  CHECK(post.action == event_action::copy);
  CHECK(post.key == "uploads/form.bin");
  CHECK(post.size == 10);
  CHECK(post.etag == "098f6bcd4621d373cade4e832627b4f6");

  auto copy = only_event_of(fixture("copy.json"));
  CHECK(copy.action == event_action::copy);
  CHECK(copy.event_name == "s3:ObjectCreated:Copy");
  CHECK(copy.key == "copies/cat.jpg");
  CHECK(copy.size == 48213);

  auto multipart = only_event_of(fixture("multipart.json"));
  CHECK(multipart.action == event_action::copy);
  CHECK(multipart.key == "backups/db.tar.zst");
  CHECK(multipart.size == 104857600);
  CHECK(multipart.etag == "b2f5ff47436671b6e533d8dc3614845d-7");  // multipart ETag keeps its part count
  CHECK(multipart.content_type == "application/zstd");
}

TEST_CASE("PutTagging changes metadata only") {
  auto e = only_event_of(fixture("put-tagging.json"));
  CHECK(e.action == event_action::copy_metadata);
  CHECK(e.key == "2026/11/cat.jpg");
  CHECK(e.size == 48213);
}

TEST_CASE("deletes and delete markers are removals without a size") {
  auto del = only_event_of(fixture("delete.json"));
  CHECK(del.action == event_action::remove);
  CHECK(del.key == "2026/11/cat.jpg");
  CHECK_FALSE(del.has_size);
  CHECK(del.etag.empty());
  CHECK(del.user_metadata.empty());
  CHECK_FALSE(del.lifecycle_expiry);

  auto marker = only_event_of(fixture("delete-marker.json"));
  CHECK(marker.action == event_action::remove);
  CHECK(marker.event_name == "s3:ObjectRemoved:DeleteMarkerCreated");
  CHECK(marker.key == "2026/11/dog.jpg");
  CHECK(marker.version_id == "0f1b8c6e-8d4e-4d3a-9b1e-2c7f5a9d3e10");
  CHECK_FALSE(marker.has_size);
}

TEST_CASE("versioned buckets: a version deleted for good names it; lock and tag changes are metadata-only") {
  auto gone = only_event_of(fixture("versioned-delete-version.json"));
  CHECK(gone.action == event_action::remove);
  CHECK(gone.event_name == "s3:ObjectRemoved:Delete");
  CHECK(gone.version_id == "7e1c2a90-4b3f-4f6e-8a1d-5c9b0e2f4a61");
  for (const char* file : {"put-tagging.json", "put-retention.json", "put-legal-hold.json"}) {
    CAPTURE(file);
    auto e = only_event_of(fixture(file));
    CHECK(e.action == event_action::copy_metadata);
    CHECK(e.key == "2026/11/cat.jpg");
  }
}

TEST_CASE("a NoOP delete is skipped: nothing existed to remove") {
  auto e = only_event_of(fixture("noop-delete.json"));
  CHECK(e.action == event_action::skip);
  CHECK(e.skip_reason == "noop_delete");
  CHECK(e.key == "never/existed.txt");
}

TEST_CASE("access events are not replication work") {
  auto e = only_event_of(fixture("access-get.json"));
  CHECK(e.action == event_action::skip);
  CHECK(e.skip_reason == "not_replication_work");
  CHECK(e.key == "2026/11/cat.jpg");
}

TEST_CASE("a versioned put carries its version id") {
  auto e = only_event_of(fixture("versioned-put.json"));
  CHECK(e.action == event_action::copy);
  CHECK(e.key == "docs/report.pdf");
  CHECK(e.version_id == "7e1f6b1c-2a3d-4e5f-8a9b-0c1d2e3f4a5b");
  CHECK(e.size == 2048);
}

TEST_CASE("lifecycle expiry is recognised in all three MinIO eras") {
  for (const char* file : {"ilm-expiry-old.json", "ilm-expiry-mid.json", "ilm-expiry-new.json"}) {
    CAPTURE(file);
    auto e = only_event_of(fixture(file));
    CHECK(e.action == event_action::remove);
    CHECK(e.lifecycle_expiry);
  }
  CHECK(only_event_of(fixture("ilm-expiry-old.json")).key == "tmp/old.log");
  CHECK(only_event_of(fixture("ilm-expiry-mid.json")).key == "tmp/old2.log");
  CHECK(only_event_of(fixture("ilm-expiry-new.json")).key == "tmp/old3.log");
}

TEST_CASE("the lifecycle marker matches in any case but only as the internal marker") {
  auto with_source = [](std::string_view host, std::string_view agent) {
    json::value doc = json::parse(fixture("ilm-expiry-new.json"));
    auto& source = doc.at("Records").at(0).at("source").as_object();
    source["host"] = host;
    source["userAgent"] = agent;
    return only_event_of(json::serialize(doc)).lifecycle_expiry;
  };
  CHECK(with_source("node-1", "internal: [ilm-expiry]"));
  CHECK(with_source("INTERNAL: [ILM-EXPIRY] node-1", ""));
  CHECK_FALSE(with_source("ilm-expiry.example.com", "[ILM-Expiry]"));
  CHECK_FALSE(with_source("Internal: [ILM-Transition]", ""));
}

TEST_CASE("a client's delete sent with the lifecycle User-Agent is propagated, not taken for an expiry") {
  // A DELETE by an authenticated client: MinIO names its access key and its request id.
  json::value doc = json::parse(fixture("delete.json"));
  doc.at("Records").at(0).at("source").as_object()["userAgent"] = "Internal: [ILM-Expiry]";
  CHECK_FALSE(only_event_of(json::serialize(doc)).lifecycle_expiry);
  // An anonymous client still gets a request id from the server.
  doc.at("Records").at(0).at("userIdentity").as_object()["principalId"] = "";
  CHECK_FALSE(only_event_of(json::serialize(doc)).lifecycle_expiry);
  // Only without a requester and a request id (the scanner's events) is it an expiry.
  doc.at("Records").at(0).at("responseElements").as_object()["x-amz-request-id"] = "";
  CHECK(only_event_of(json::serialize(doc)).lifecycle_expiry);
}

TEST_CASE("special characters decode exactly once to the exact bytes") {
  auto e = only_event_of(fixture("special-chars.json"));
  // "café" is NFC (C3 A9); the envelope Key agreed, or this would be a key_mismatch.
  const std::string expected =
      "a dir/sub+dir/100% done & caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E (v2)~.txt";
  CHECK(e.key == expected);
  CHECK(e.key.size() == expected.size());
  CHECK(e.size == 12);
}

TEST_CASE("'+' in an escaped key is a space and '%2B' is a plus") {
  CHECK(only_event_of(put_with_key("a+b", "photos/a b")).key == "a b");
  CHECK(only_event_of(put_with_key("a%2Bb", "photos/a+b")).key == "a+b");
  CHECK(only_event_of(put_with_key("a%2bb", "photos/a+b")).key == "a+b");  // lowercase hex too
  CHECK(only_event_of(put_with_key("%2B+%2B", "photos/+ +")).key == "+ +");
}

TEST_CASE("a key is never decoded twice") {
  CHECK(only_event_of(put_with_key("%252B", "photos/%2B")).key == "%2B");
  CHECK(only_event_of(put_with_key("100%2525", "photos/100%25")).key == "100%25");
  CHECK(only_event_of(put_with_key("%2541", "photos/%41")).key == "%41");
  // The envelope holds the already-decoded name; decoding twice would disagree with it.
  CHECK(error_of(put_with_key("%252B", "photos/+")).code == "key_mismatch");
}

TEST_CASE("NFC and NFD spellings stay distinct bytes") {
  const std::string nfc = "caf\xC3\xA9";
  const std::string nfd = "cafe\xCC\x81";
  auto a = only_event_of(put_with_key("caf%C3%A9", "photos/" + nfc));
  auto b = only_event_of(put_with_key("cafe%CC%81", "photos/" + nfd));
  CHECK(a.key == nfc);
  CHECK(b.key == nfd);
  CHECK(a.key != b.key);
  // No normalisation on either side: an NFD key under an NFC envelope is a mismatch.
  CHECK(error_of(put_with_key("cafe%CC%81", "photos/" + nfc)).code == "key_mismatch");
}

TEST_CASE("a key that disagrees with the envelope Key is rejected") {
  auto other_key = error_of(put_with_key("2026%2F11%2Fdog.jpg", "photos/2026/11/cat.jpg"));
  CHECK(other_key.code == "key_mismatch");
  CHECK(other_key.reason.find("Records[0].s3.object.key") != std::string::npos);

  CHECK(error_of(put_with_key("2026%2F11%2Fcat.jpg", "videos/2026/11/cat.jpg")).code == "key_mismatch");
  CHECK(error_of(put_with_key("2026%2F11%2Fcat.jpg", "photos2026/11/cat.jpg")).code == "key_mismatch");
  CHECK(error_of(put_with_key("2026%2F11%2Fcat.jpg", "photos/2026/11/cat.jpg ")).code == "key_mismatch");
  CHECK(error_of(put_with_key("2026%2F11%2Fcat.jpg", "")).code == "key_mismatch");
}

TEST_CASE("a mismatch reason stays one printable line however odd the key") {
  auto e = error_of(put_with_key("a%0Ab%22c%5C" + std::string(500, 'x'), "photos/z"));
  CHECK(e.code == "key_mismatch");
  CHECK(e.reason.size() < 600);
  CHECK(std::all_of(e.reason.begin(), e.reason.end(), [](char c) { return c >= 0x20 && c < 0x7f; }));
}

TEST_CASE("without an envelope Key the consistency check is skipped") {
  json::value doc = json::parse(fixture("put.json"));
  doc.as_object().erase("Key");
  object_of(doc)["key"] = "elsewhere%2Fdog.jpg";
  CHECK(only_event_of(json::serialize(doc)).key == "elsewhere/dog.jpg");

  doc.as_object()["Key"] = nullptr;  // null is absent, as for every optional member
  CHECK(only_event_of(json::serialize(doc)).key == "elsewhere/dog.jpg");
}

TEST_CASE("every record of a message is decoded, in order") {
  const json::value put = json::parse(fixture("put.json"));
  const json::value tagging = json::parse(fixture("put-tagging.json"));
  const json::value del = json::parse(fixture("delete-marker.json"));

  SUBCASE("AWS-style payload without an envelope") {
    json::object doc;
    doc["Records"] = json::array{put.at("Records").at(0), del.at("Records").at(0), tagging.at("Records").at(0)};
    auto events = events_of(json::serialize(doc));
    REQUIRE(events.size() == 3);
    CHECK(events[0].action == event_action::copy);
    CHECK(events[0].key == "2026/11/cat.jpg");
    CHECK(events[1].action == event_action::remove);
    CHECK(events[1].key == "2026/11/dog.jpg");
    CHECK(events[2].action == event_action::copy_metadata);
  }
  SUBCASE("an envelope Key applies to every record") {
    json::value doc = put;
    doc.at("Records").as_array().push_back(tagging.at("Records").at(0));
    auto events = events_of(json::serialize(doc));
    REQUIRE(events.size() == 2);
    CHECK(events[1].action == event_action::copy_metadata);

    doc.at("Records").as_array().push_back(del.at("Records").at(0));
    auto e = error_of(json::serialize(doc));
    CHECK(e.code == "key_mismatch");
    CHECK(e.reason.find("Records[2]") != std::string::npos);
  }
  SUBCASE("one broken record rejects the whole message") {
    json::value doc = put;
    doc.at("Records").as_array().push_back(42);
    auto e = error_of(json::serialize(doc));
    CHECK(e.code == "bad_record");
    CHECK(e.reason.find("Records[1]") != std::string::npos);
  }
}

TEST_CASE("AWS event names without the s3: prefix are normalised") {
  auto put = only_event_of(with_event_name("put.json", "ObjectCreated:Put"));
  CHECK(put.event_name == "s3:ObjectCreated:Put");
  CHECK(put.action == event_action::copy);
  auto marker = only_event_of(with_event_name("delete-marker.json", "ObjectRemoved:DeleteMarkerCreated"));
  CHECK(marker.event_name == "s3:ObjectRemoved:DeleteMarkerCreated");
  CHECK(marker.action == event_action::remove);
}

TEST_CASE("event names classify into copy, metadata, removal or skip") {
  struct row {
    const char* name;
    event_action action;
    const char* skip_reason;
  };
  const row rows[] = {
      {"s3:ObjectCreated:Put", event_action::copy, ""},
      {"s3:ObjectCreated:Post", event_action::copy, ""},
      {"s3:ObjectCreated:Copy", event_action::copy, ""},
      {"s3:ObjectCreated:CompleteMultipartUpload", event_action::copy, ""},
      {"s3:ObjectCreated:PutRetention", event_action::copy_metadata, ""},
      {"s3:ObjectCreated:PutLegalHold", event_action::copy_metadata, ""},
      {"s3:ObjectCreated:PutTagging", event_action::copy_metadata, ""},
      {"s3:ObjectCreated:DeleteTagging", event_action::copy_metadata, ""},
      {"s3:ObjectRemoved:Delete", event_action::remove, ""},
      {"s3:ObjectRemoved:DeleteMarkerCreated", event_action::remove, ""},
      {"s3:ObjectRemoved:DeleteAllVersions", event_action::remove, ""},
      {"s3:LifecycleDelMarkerExpiration:Delete", event_action::remove, ""},
      {"s3:ObjectRemoved:NoOP", event_action::skip, "noop_delete"},
      {"s3:ObjectAccessed:Get", event_action::skip, "not_replication_work"},
      {"s3:ObjectAccessed:Head", event_action::skip, "not_replication_work"},
      {"s3:Replication:OperationCompletedReplication", event_action::skip, "not_replication_work"},
      {"s3:ObjectRestore:Completed", event_action::skip, "not_replication_work"},
      {"s3:ObjectTransition:Complete", event_action::skip, "not_replication_work"},
      {"s3:Scanner:ManyVersions", event_action::skip, "not_replication_work"},
      {"s3:BucketCreated:*", event_action::skip, "not_replication_work"},
      {"s3:BucketRemoved:*", event_action::skip, "not_replication_work"},
      {"s3:ObjectCreated:SomethingNew", event_action::skip, "unknown_event_name"},
      {"s3:ObjectCreated:put", event_action::skip, "unknown_event_name"},  // names are case-sensitive
  };
  for (const row& r : rows) {
    CAPTURE(r.name);
    auto e = only_event_of(with_event_name("put.json", r.name));
    CHECK(e.event_name == r.name);
    CHECK(e.action == r.action);
    CHECK(e.skip_reason == r.skip_reason);
  }
}

TEST_CASE("every malformed fixture gives its error code") {
  struct row {
    const char* file;
    const char* code;
    const char* names;  // the reason must name the field
  };
  const row rows[] = {
      {"bad-empty.json", "empty", "empty"},
      {"bad-not-json.txt", "not_json", "JSON"},
      {"bad-no-records.json", "no_records", "Records"},
      {"bad-records-not-array.json", "records_not_array", "Records"},
      {"bad-size-string.json", "bad_size", "Records[0].s3.object.size"},
      {"bad-key-escape.json", "bad_key_escape", "Records[0].s3.object.key"},
  };
  for (const row& r : rows) {
    CAPTURE(r.file);
    auto e = error_of(fixture(r.file));
    CHECK(e.code == r.code);
    CHECK(e.reason.find(r.names) != std::string::npos);
  }
}

TEST_CASE("sizes must be non-negative integers") {
  CHECK(error_of(with_size(-1)).code == "bad_size");
  CHECK(error_of(with_size(1.5)).code == "bad_size");
  CHECK(error_of(with_size("48213")).code == "bad_size");
  CHECK(error_of(with_size(true)).code == "bad_size");
  CHECK(error_of(with_size(json::array{1})).code == "bad_size");
  CHECK(error_of(with_size(1e300)).code == "bad_size");

  auto zero = only_event_of(with_size(0));
  CHECK(zero.has_size);
  CHECK(zero.size == 0);
  CHECK(only_event_of(with_size(std::uint64_t{18446744073709551615u})).size == 18446744073709551615u);
  CHECK(only_event_of(with_size(1024.0)).size == 1024);
}

TEST_CASE("a created event without a size decodes: MinIO omits the size of an empty object") {
  json::value doc = json::parse(fixture("put.json"));
  object_of(doc).erase("size");
  auto e = only_event_of(json::serialize(doc));
  CHECK(e.action == event_action::copy);
  CHECK_FALSE(e.has_size);
}

TEST_CASE("structural damage is reported with a bounded code") {
  auto damaged = [](auto&& edit) {
    json::value doc = json::parse(fixture("put.json"));
    edit(doc);
    return error_of(json::serialize(doc));
  };
  auto record = [](json::value& doc) -> json::object& { return doc.at("Records").at(0).as_object(); };

  CHECK(damaged([&](json::value& d) { record(d).erase("eventName"); }).code == "missing_field");
  CHECK(damaged([&](json::value& d) { record(d)["eventName"] = ""; }).code == "missing_field");
  CHECK(damaged([&](json::value& d) { record(d)["eventName"] = 7; }).code == "bad_record");
  CHECK(damaged([&](json::value& d) { record(d).erase("s3"); }).code == "missing_field");
  CHECK(damaged([&](json::value& d) { record(d)["s3"] = "s3"; }).code == "bad_record");
  CHECK(damaged([&](json::value& d) { record(d)["s3"].as_object().erase("object"); }).code == "missing_field");
  CHECK(damaged([&](json::value& d) { record(d)["s3"].as_object()["bucket"] = json::object{}; }).code ==
        "missing_field");
  CHECK(damaged([&](json::value& d) { object_of(d).erase("key"); }).code == "missing_field");
  CHECK(damaged([&](json::value& d) { object_of(d)["key"] = 12; }).code == "bad_record");
  CHECK(damaged([&](json::value& d) { object_of(d)["eTag"] = 12; }).code == "bad_record");
  CHECK(damaged([&](json::value& d) { object_of(d)["userMetadata"] = json::object{{"a", 1}}; }).code ==
        "bad_record");
  CHECK(damaged([&](json::value& d) { record(d)["source"] = json::array{}; }).code == "bad_record");
  CHECK(damaged([&](json::value& d) { d.as_object()["Key"] = 3; }).code == "bad_record");
  CHECK(damaged([&](json::value& d) { d.as_object()["Records"] = nullptr; }).code == "no_records");
  CHECK(damaged([&](json::value& d) { d.as_object()["Records"] = "x"; }).code == "records_not_array");
  CHECK(damaged([&](json::value& d) { d.as_object()["Records"].as_array()[0] = "x"; }).code == "bad_record");
  CHECK(damaged([&](json::value& d) { d = json::array{}; }).code == "no_records");
  CHECK(damaged([&](json::value& d) { d = json::object{}; }).code == "no_records");

  CHECK(error_of(" \r\n\t").code == "empty");
  CHECK(error_of(std::string(100000, '[')).code == "not_json");  // nesting is bounded, not recursed into
  CHECK(error_of("{\"Records\":[{}]} trailing").code == "not_json");
  CHECK(error_of("{\"Key\":\"\xFF\",\"Records\":[]}").code == "not_json");  // invalid UTF-8 in the JSON text
}

TEST_CASE("damage inside a skipped event does not reject the message") {
  json::value doc = json::parse(fixture("access-get.json"));
  object_of(doc)["key"] = "2026%2G11";
  auto e = only_event_of(json::serialize(doc));
  CHECK(e.action == event_action::skip);
  CHECK(e.skip_reason == "not_replication_work");
  CHECK(e.key.empty());  // half-read fields are dropped
  CHECK(e.bucket.empty());

  json::value noop = json::parse(fixture("noop-delete.json"));
  noop.at("Records").at(0).as_object().erase("s3");
  CHECK(only_event_of(json::serialize(noop)).skip_reason == "noop_delete");
}

TEST_CASE("null optional members read as absent") {
  json::value doc = json::parse(fixture("put.json"));
  auto& object = object_of(doc);
  for (const char* name : {"size", "eTag", "contentType", "userMetadata", "versionId", "sequencer"})
    object[name] = nullptr;
  doc.at("Records").at(0).as_object()["source"] = nullptr;
  auto e = only_event_of(json::serialize(doc));
  CHECK(e.action == event_action::copy);
  CHECK_FALSE(e.has_size);
  CHECK(e.etag.empty());
  CHECK(e.user_metadata.empty());
  CHECK_FALSE(e.lifecycle_expiry);
}

TEST_CASE("actions have stable names") {
  CHECK(std::string(ev::to_string(event_action::copy)) == "copy");
  CHECK(std::string(ev::to_string(event_action::copy_metadata)) == "copy_metadata");
  CHECK(std::string(ev::to_string(event_action::remove)) == "remove");
  CHECK(std::string(ev::to_string(event_action::skip)) == "skip");
}

TEST_CASE("form-url decoding: '+' is a space, %XX is one byte, broken escapes are refused") {
  auto decode = [](std::string_view s) {
    bool ok = false;
    std::string out = ev::form_url_decode(s, ok);
    return ok ? std::optional<std::string>(out) : std::nullopt;
  };
  CHECK(decode("") == "");
  CHECK(decode("plain-_.~") == "plain-_.~");
  CHECK(decode("%41%6a%7E") == "Aj~");
  CHECK(decode("a+b+") == "a b ");
  CHECK(decode("%2B") == "+");
  CHECK(decode("%00") == std::string(1, '\0'));  // bytes are kept, even NUL
  CHECK(decode("%FF") == std::string(1, '\xFF'));
  CHECK(decode("%") == std::nullopt);
  CHECK(decode("%4") == std::nullopt);
  CHECK(decode("abc%") == std::nullopt);
  CHECK(decode("%zz") == std::nullopt);
  CHECK(decode("%4g") == std::nullopt);
  CHECK(decode("%%41") == std::nullopt);
  CHECK(decode("%+1") == std::nullopt);
}

TEST_CASE("random mutations of the fixtures never throw and always decode or fail with a known code") {
  const char* files[] = {"put.json",          "post.json",          "copy.json",           "multipart.json",
                         "put-tagging.json",  "delete.json",        "delete-marker.json",  "noop-delete.json",
                         "ilm-expiry-old.json", "ilm-expiry-mid.json", "ilm-expiry-new.json", "versioned-put.json",
                         "special-chars.json", "access-get.json",   "bad-key-escape.json", "bad-size-string.json",
                         "versioned-delete-version.json", "put-retention.json", "put-legal-hold.json",
                         "bad-no-records.json", "bad-records-not-array.json", "bad-not-json.txt",  "bad-empty.json"};
  std::vector<std::string> seeds;
  for (const char* f : files) seeds.push_back(fixture(f));
  {  // and one message with several records, AWS style
    json::array records{json::parse(fixture("put.json")).at("Records").at(0),
                        json::parse(fixture("delete.json")).at("Records").at(0),
                        json::parse(fixture("special-chars.json")).at("Records").at(0)};
    seeds.push_back(json::serialize(json::object{{"Records", std::move(records)}}));
  }
  // Fragments that steer mutations toward the decoder's own edge cases rather than JSON syntax.
  const std::string splices[] = {"%",  "%2",   "%2B", "+",     "\"",    "\\",   "{",    "}",  "[",  "]",
                                 ",",  ":",    "-1",  "null",  "1e999", "\\u0000", "\\uD800", "\"size\":", "{}", "[]"};

  std::mt19937_64 rng(0x5eed2026);  // fixed: a failure must reproduce
  auto below = [&](std::size_t n) { return n == 0 ? 0 : static_cast<std::size_t>(rng() % n); };

  int throws = 0, unknown_codes = 0, decoded = 0, empty_results = 0;
  std::string first_problem;
  for (int i = 0; i < 20000; ++i) {
    std::string s = seeds[below(std::size(seeds))];
    const int edits = 1 + static_cast<int>(below(4));
    for (int k = 0; k < edits; ++k) {
      switch (below(6)) {
        case 0:  // flip one bit
          if (!s.empty()) s[below(s.size())] ^= static_cast<char>(1u << below(8));
          break;
        case 1:  // overwrite one byte with anything
          if (!s.empty()) s[below(s.size())] = static_cast<char>(below(256));
          break;
        case 2:  // truncate
          s.resize(below(s.size() + 1));
          break;
        case 3:  // insert a random byte
          s.insert(s.begin() + static_cast<std::ptrdiff_t>(below(s.size() + 1)), static_cast<char>(below(256)));
          break;
        case 4:  // insert a meaningful fragment
          s.insert(below(s.size() + 1), splices[below(std::size(splices))]);
          break;
        case 5:  // delete a span
          if (!s.empty()) {
            const std::size_t at = below(s.size());
            s.erase(at, 1 + below(std::min<std::size_t>(16, s.size() - at)));
          }
          break;
      }
    }
    try {
      auto result = ev::decode_minio_event(s);
      if (result.has_error()) {
        const ev::decode_error error = result.error();
        const ev::decode_error* e = &error;
        // The reason goes into logs and dead-letter headers: one line of printable ASCII.
        const bool printable = std::all_of(e->reason.begin(), e->reason.end(),
                                           [](char c) { return c >= 0x20 && c < 0x7f; });
        if (!is_known_error_code(e->code) || e->reason.empty() || !printable) {
          ++unknown_codes;
          if (first_problem.empty()) first_problem = "code " + e->code + " for: " + s;
        }
      } else {
        const auto& events = *result;
        if (events.empty()) ++empty_results;
        ++decoded;
      }
    } catch (const std::exception& x) {
      ++throws;
      if (first_problem.empty()) first_problem = std::string("threw ") + x.what() + " for: " + s;
    } catch (...) {
      ++throws;
      if (first_problem.empty()) first_problem = "threw a non-std exception for: " + s;
    }
  }
  INFO(first_problem);
  CHECK(throws == 0);
  CHECK(unknown_codes == 0);
  CHECK(empty_results == 0);
  MESSAGE("mutations that still decoded: " << decoded << " of 20000");
}

TEST_CASE("event names become metric labels from a closed set, whatever the sender invents") {
  using archie::event::metric_event_name;
  CHECK(metric_event_name("s3:ObjectCreated:Put") == "s3:ObjectCreated:Put");
  CHECK(metric_event_name("s3:ObjectRemoved:Delete") == "s3:ObjectRemoved:Delete");
  CHECK(metric_event_name("s3:BucketCreated:0b7e6c1e-uuid") == "s3:Bucket");
  CHECK(metric_event_name("s3:ObjectAccessed:Get") == "s3:ObjectAccessed:");
  CHECK(metric_event_name(std::string(100000, 'x')) == "other");
  CHECK(metric_event_name("s3:ObjectCreated:Something-new") == "other");
}
