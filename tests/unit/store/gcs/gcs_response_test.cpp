#include "store/gcs/gcs_response.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace archie::store::gcs;

namespace {

archie::http::response answer(int status, archie::http::header_list headers, std::string body = {}) {
  archie::http::response r;
  r.status = status;
  r.headers = std::move(headers);
  r.body = std::move(body);
  return r;
}

}  // namespace

TEST_CASE("an md5Hash is turned into the lower-case hex MD5 that S3 ETags compare with") {
  CHECK(base64_to_hex("1B2M2Y8AsgTpgAmY7PhCfg==") == "d41d8cd98f00b204e9800998ecf8427e");
  CHECK(base64_to_hex("yZRlqg==") == "c99465aa");
  CHECK(base64_to_hex("AAA=") == "0000");
}

TEST_CASE("a hash that is all padding or not clean base64 gives no hex at all") {
  // "====" made the decoded length wrap to SIZE_MAX and the loop read off the stack.
  CHECK(base64_to_hex("====") == "");
  CHECK(base64_to_hex("A===") == "");
  CHECK(base64_to_hex("AAAA====") == "");
  CHECK(base64_to_hex("A=AA") == "");
  CHECK(base64_to_hex("AA AAA==") == "");
  CHECK(base64_to_hex("AAA") == "");
}

TEST_CASE("a download whose x-goog-hash md5 is all padding yields an empty ETag, not a crash") {
  auto m = object_from_headers(answer(200, {{"x-goog-hash", "md5===="}, {"content-length", "3"}}));
  CHECK(m.md5_base64 == "===");
  CHECK(m.info.etag == "");
  CHECK(m.info.size == 3);

  auto four = object_from_headers(answer(200, {{"x-goog-hash", "crc32c=yZRlqg==,md5====="}}));
  CHECK(four.md5_base64 == "====");
  CHECK(four.info.etag == "");
  CHECK(four.crc32c_base64 == "yZRlqg==");
}

TEST_CASE("an object resource whose md5Hash is all padding yields an empty ETag, not a crash") {
  auto m = parse_object(R"({"md5Hash":"====","etag":"CAE=","size":"5"})");
  REQUIRE(m);
  CHECK(m->md5_base64 == "====");
  CHECK(m->info.etag == "");
  CHECK(m->info.size == 5);
}

TEST_CASE("a 308 that claims more bytes than the upload has is refused and leaves the session as it was") {
  resumable_session s;
  s.total = 1000;
  s.persisted = 256;
  CHECK(apply_session_answer(s, answer(308, {{"range", "bytes=0-1000"}})) != "");
  CHECK(s.persisted == 256);
  CHECK(apply_session_answer(s, answer(308, {{"range", "bytes=0-18446744073709551615"}})) != "");
  CHECK(s.persisted == 256);
  CHECK(apply_session_answer(s, answer(308, {{"range", "bytes=0-999"}})) == "");
  CHECK(s.persisted == 1000);
}

TEST_CASE("Retry-After is read in seconds and kept within the client's limit") {
  CHECK(retry_after_seconds(answer(429, {{"retry-after", "7"}}), 30) == 7);
  CHECK(retry_after_seconds(answer(429, {{"retry-after", "99999999999"}}), 30) == 0);
  CHECK(retry_after_seconds(answer(429, {{"retry-after", "120"}}), 30) == 30);
  CHECK(retry_after_seconds(answer(429, {{"retry-after", "-5"}}), 30) == 0);
  CHECK(retry_after_seconds(answer(503, {}), 30) == 0);
}

TEST_CASE("a versions=true listing gives each generation, live or noncurrent, with its custom metadata") {
  auto page = parse_generation_page(
      R"({"items":[{"name":"k","generation":"7","size":"3","md5Hash":"1B2M2Y8AsgTpgAmY7PhCfg==",)"
      R"("timeDeleted":"2026-12-07T10:00:00.000Z","metadata":{"archie-source-version-id":"v1"}},)"
      R"({"name":"k","generation":"9","size":"4"}, 42],"nextPageToken":"t2"})");
  REQUIRE(page);
  REQUIRE(page->generations.size() == 2);  // the item that is not an object is skipped
  CHECK_FALSE(page->generations[0].live);
  CHECK(page->generations[0].meta.generation == 7);
  CHECK(page->generations[0].meta.info.etag == "d41d8cd98f00b204e9800998ecf8427e");
  REQUIRE(page->generations[0].meta.info.metadata("archie-source-version-id"));
  CHECK(*page->generations[0].meta.info.metadata("archie-source-version-id") == "v1");
  CHECK(page->generations[1].live);
  CHECK(page->next_page_token == "t2");
  CHECK_FALSE(parse_generation_page("not json"));
}

TEST_CASE("a bucket keeps generations only when its resource says versioning.enabled is true") {
  CHECK(parse_versioning_enabled(R"({"versioning":{"enabled":true}})") == true);
  CHECK(parse_versioning_enabled(R"({"versioning":{"enabled":false}})") == false);
  CHECK(parse_versioning_enabled(R"({})") == false);  // never set
  CHECK(parse_versioning_enabled(R"({"versioning":{"enabled":"true"}})") == false);  // not a boolean
  CHECK_FALSE(parse_versioning_enabled("<html>"));
}
