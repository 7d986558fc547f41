// S3 request builders and answer classification, without a server.
#include "store/s3/s3_requests.hpp"
#include "store/s3/s3_response.hpp"

#include "http/percent_encoding.hpp"

#include <doctest/doctest.h>

#include <algorithm>

using namespace archie;
using namespace archie::store;
using namespace archie::store::s3::requests;

namespace {

const std::string* header(const call& c, const std::string& name) {
  for (const auto& [k, v] : c.headers)
    if (k == name) return &v;
  return nullptr;
}

}  // namespace

TEST_CASE("S3 answers are classified by error code first, then by status") {
  CHECK(classify(404, "NoSuchKey") == error_kind::not_found);
  CHECK(classify(404, "NoSuchUpload") == error_kind::not_found);
  CHECK(classify(412, "PreconditionFailed") == error_kind::precondition_failed);
  CHECK(classify(503, "SlowDown") == error_kind::retryable);
  CHECK(classify(400, "RequestTimeout") == error_kind::retryable);
  CHECK(classify(400, "BadDigest") == error_kind::retryable);  // damaged on the way: send again
  CHECK(classify(409, "OperationAborted") == error_kind::retryable);  // a conflicting operation: try again
  CHECK(classify(409, "BucketNotEmpty") == error_kind::permanent);
  CHECK(classify(403, "AccessDenied") == error_kind::permission);
  CHECK(classify(400, "InvalidArgument") == error_kind::permanent);
}

TEST_CASE("a ranged read names its bytes and pins the version with a quoted ETag and its ID") {
  std::byte room[100];
  auto c = ranged_get_call("b", "k", room, 1000, "abc", "3sL4kqtJlcpXroDTDmJ", nullptr);
  CHECK(c.query == query_list{{"versionId", "3sL4kqtJlcpXroDTDmJ"}});
  REQUIRE(header(c, "range"));
  CHECK(*header(c, "range") == "bytes=1000-1099");
  REQUIRE(header(c, "if-match"));
  CHECK(*header(c, "if-match") == "\"abc\"");
  CHECK(c.into_may_end_early);
  auto whole = ranged_get_call("b", "k", {}, 0, "", "", nullptr);
  CHECK(whole.query.empty());  // no ID: the current version
  auto null_version = ranged_get_call("b", "k", {}, 0, "", "null", nullptr);
  CHECK(null_version.query == query_list{{"versionId", "null"}});  // the pre-versioning one, maybe not current
  CHECK(header(whole, "range") == nullptr);
  CHECK(header(whole, "if-match") == nullptr);
}

TEST_CASE("a read that goes on asks for the parts it has room for: a plain GET for a whole object") {
  std::byte room[100];
  auto whole = ranged_get_call("b", "k", room, 0, "abc", "", nullptr);
  let_answer_go_on(whole, 0, 0);
  CHECK(header(whole, "range") == nullptr);
  CHECK(whole.into_may_continue);
  REQUIRE(header(whole, "if-match"));  // still pinned to the version
  auto parts = ranged_get_call("b", "k", room, 1000, "abc", "", nullptr);
  let_answer_go_on(parts, 1000, 1300);
  REQUIRE(header(parts, "range"));
  CHECK(*header(parts, "range") == "bytes=1000-1299");
  CHECK(std::count_if(parts.headers.begin(), parts.headers.end(), [](const auto& h) { return h.first == "range"; }) == 1);
  auto rest = ranged_get_call("b", "k", room, 1000, "abc", "", nullptr);
  let_answer_go_on(rest, 1000, 0);
  CHECK(*header(rest, "range") == "bytes=1000-");
}

TEST_CASE("a server-side copy with new metadata replaces it and copies only the version it describes") {
  object_info meta;
  meta.etag = "e1";
  meta.content_type = "image/jpeg";
  meta.user_metadata = {{"archie-source-etag", "e1"}};
  auto c = copy_call("src", "a b/c", "dst", "k", &meta);
  CHECK(*header(c, "x-amz-copy-source") == "/src/a%20b/c");
  CHECK(*header(c, "x-amz-metadata-directive") == "REPLACE");
  CHECK(*header(c, "x-amz-copy-source-if-match") == "\"e1\"");
  CHECK(*header(c, "x-amz-meta-archie-source-etag") == "e1");
  CHECK(*header(c, "content-type") == "image/jpeg");
  meta.version_id = "v 1+";
  auto pinned = copy_call("src", "a b/c", "dst", "k", &meta);
  CHECK(*header(pinned, "x-amz-copy-source") == "/src/a%20b/c?versionId=v%201%2B");
  auto plain = copy_call("src", "k", "dst", "k", nullptr);
  CHECK(header(plain, "x-amz-metadata-directive") == nullptr);
}

TEST_CASE("the canonical query is encoded and sorted") {
  CHECK(canonical_query_string({{"uploadId", "a/b"}, {"partNumber", "2"}}) == "partNumber=2&uploadId=a%2Fb");
}

TEST_CASE("tags have one canonical form: sorted, encoded, and the same after a trip through XML") {
  CHECK(canonical_tagging({{"tier", "gold plus"}, {"a&b", "x=y"}}) == "a%26b=x%3Dy&tier=gold%20plus");
  std::string doc = tagging_document("a%26b=x%3Dy&tier=gold%20plus");
  CHECK(doc.find("<Key>a&amp;b</Key><Value>x=y</Value>") != std::string::npos);
  CHECK(tagging_from_document(doc) == "a%26b=x%3Dy&tier=gold%20plus");
  CHECK(tagging_from_document("<Tagging><TagSet></TagSet></Tagging>").empty());
  CHECK(tagging_document("").find("<TagSet></TagSet>") != std::string::npos);
}

TEST_CASE("tag calls name the version, \"null\" included; none for the current one") {
  auto named = get_tagging_call("b", "k", "v123");
  CHECK(named.query == query_list{{"tagging", ""}, {"versionId", "v123"}});
  CHECK(get_tagging_call("b", "k", "null").query == query_list{{"tagging", ""}, {"versionId", "null"}});
  CHECK(get_tagging_call("b", "k", "").query == query_list{{"tagging", ""}});
  CHECK(delete_tagging_call("b", "k", "").method == "DELETE");
  object_info meta;
  meta.tagging = "a=1";
  http::header_list h;
  add_tagging_header(h, meta);
  REQUIRE(h.size() == 1);
  CHECK(h[0].second == "a=1");
}

TEST_CASE("percent_decode reverses percent_encode and leaves malformed escapes alone") {
  const std::string raw = "a b/c+d%&\xc3\xa9";
  CHECK(http::percent_decode(http::percent_encode(raw)) == raw);
  CHECK(http::percent_decode("100%") == "100%");
  CHECK(http::percent_decode("%zz%4") == "%zz%4");
  CHECK(http::percent_decode("a+b") == "a+b");
}

TEST_CASE("a destination's write options become S3 headers; none when unset") {
  config::write_options w;
  w.storage_class = "STANDARD_IA";
  w.server_side_encryption = "aws:kms";
  w.sse_kms_key_id = "key-1";
  w.acl = "bucket-owner-full-control";
  http::header_list h;
  add_write_options(h, &w);
  CHECK(h == http::header_list{{"x-amz-storage-class", "STANDARD_IA"},
                               {"x-amz-server-side-encryption", "aws:kms"},
                               {"x-amz-server-side-encryption-aws-kms-key-id", "key-1"},
                               {"x-amz-acl", "bucket-owner-full-control"}});
  http::header_list none;
  add_write_options(none, nullptr);
  config::write_options empty;
  add_write_options(none, &empty);
  CHECK(none.empty());
}

TEST_CASE("a server without the feature (501 NotImplemented) is refused for good, not retried") {
  CHECK(classify(501, "NotImplemented") == error_kind::permanent);
  CHECK(classify(501, "") == error_kind::retryable);
}

TEST_CASE("object lock travels only to destinations that copy it, and its date is compared to the second") {
  object_info meta;
  meta.lock_mode = "GOVERNANCE";
  meta.lock_retain_until = "2031-01-01T00:00:00Z";
  meta.legal_hold = "ON";
  config::write_options copy;
  copy.copy_object_lock = true;
  http::header_list h;
  add_object_lock_headers(h, meta, &copy);
  CHECK(h == http::header_list{{"x-amz-object-lock-mode", "GOVERNANCE"},
                               {"x-amz-object-lock-retain-until-date", "2031-01-01T00:00:00Z"},
                               {"x-amz-object-lock-legal-hold", "ON"}});
  http::header_list none;
  config::write_options ignore;
  add_object_lock_headers(none, meta, &ignore);
  add_object_lock_headers(none, meta, nullptr);
  CHECK(none.empty());
  CHECK(archie::store::s3::lock_date("2031-01-01T00:00:00.000000000Z") == "2031-01-01T00:00:00Z");
  CHECK(archie::store::s3::lock_date("2031-01-01T00:00:00Z") == "2031-01-01T00:00:00Z");
  CHECK(retention_document(meta).find("<Mode>GOVERNANCE</Mode><RetainUntilDate>2031-01-01T00:00:00Z</RetainUntilDate>") !=
        std::string::npos);
  object_info unlocked;
  CHECK(retention_document(unlocked).find("<Mode>") == std::string::npos);
  CHECK(legal_hold_document(false).find("<Status>OFF</Status>") != std::string::npos);
  auto c = put_retention_call("b", "k", "v1", {}, true);
  CHECK(c.query == query_list{{"retention", ""}, {"versionId", "v1"}});
  CHECK(*header(c, "x-amz-bypass-governance-retention") == "true");
}

TEST_CASE("a source object encrypted with a customer key is named and refused for good, not retried") {
  auto refusal = [](const char* code, const char* message) {
    return store_error{error_kind::permanent, "src", "GetObject", "b", "k", 400, code, message, ""};
  };
  // AWS and MinIO
  auto aws = recognise_customer_key(refusal(
      "InvalidRequest",
      "The object was stored using a form of Server Side Encryption. The correct parameters must be provided to "
      "retrieve the object."));
  CHECK(aws.code == customer_key_code);
  CHECK(aws.kind == error_kind::permanent);
  CHECK(aws.message.find("SSE-C") != std::string::npos);
  // Ceph RGW
  auto rgw = recognise_customer_key(refusal(
      "InvalidArgument",
      "Requests specifying Server Side Encryption with Customer provided keys must provide a valid encryption "
      "algorithm."));
  CHECK(rgw.code == customer_key_code);
  // Anything else is left as it was.
  auto other = recognise_customer_key(refusal("InvalidArgument", "Invalid Argument"));
  CHECK(other.code == "InvalidArgument");
  auto retry = recognise_customer_key(store_error{error_kind::retryable, "src", "GetObject", "b", "k", 503, "SlowDown",
                                                  "Server Side Encryption busy", ""});
  CHECK(retry.kind == error_kind::retryable);
}

TEST_CASE("a version listing keeps versions and delete markers in the order the server gave") {
  auto page = store::s3::parse_object_versions(
      "<ListVersionsResult><IsTruncated>false</IsTruncated>"
      "<Version><Key>a</Key><VersionId>v3</VersionId><IsLatest>true</IsLatest><ETag>&quot;e3&quot;</ETag>"
      "<Size>12</Size></Version>"
      "<DeleteMarker><Key>a</Key><VersionId>d1</VersionId><IsLatest>false</IsLatest></DeleteMarker>"
      "<Version><Key>a</Key><VersionId>v1</VersionId><IsLatest>false</IsLatest><ETag>\"e1\"</ETag><Size>5</Size>"
      "</Version></ListVersionsResult>");
  REQUIRE(page.entries.size() == 3);
  CHECK(page.entries[0].second.version_id == "v3");
  CHECK(page.entries[0].second.latest);
  CHECK(page.entries[0].second.etag == "e3");
  CHECK(page.entries[0].second.size == 12);
  CHECK(page.entries[1].second.delete_marker);
  CHECK(page.entries[1].second.version_id == "d1");
  CHECK(page.entries[2].second.version_id == "v1");
  CHECK(page.entries[2].second.etag == "e1");
  CHECK_FALSE(page.truncated);
}

TEST_CASE("the source's flexible checksum is read from an answer, and a composite one is marked as such") {
  http::response r;
  r.status = 200;
  r.headers = {{"etag", "\"abc\""}, {"x-amz-checksum-crc64nvme", "AAAAAAAAAAA="}, {"x-amz-checksum-type", "FULL_OBJECT"}};
  auto info = s3::info_from_headers(r);
  CHECK(info.checksum_algorithm == "crc64nvme");
  CHECK(info.checksum == "AAAAAAAAAAA=");
  r.headers = {{"x-amz-checksum-type", "COMPOSITE"}, {"x-amz-checksum-crc32c", "yZRlqg=="}};
  CHECK(s3::info_from_headers(r).checksum.find('-') != std::string::npos);
  r.headers = {{"x-amz-checksum-crc32c", "yZRlqg==-2"}};
  CHECK(s3::info_from_headers(r).checksum == "yZRlqg==-2");
  r.headers = {{"x-amz-checksum-mode", "ENABLED"}, {"x-amz-checksum-bogus", "x"}};  // not checksums
  CHECK(s3::info_from_headers(r).checksum_algorithm.empty());
}

TEST_CASE("a whole-object checksum travels to a single PUT for the destination to check; a composite one does not") {
  object_info meta;
  meta.checksum_algorithm = "crc32c";
  meta.checksum = "yZRlqg==";
  http::header_list h;
  add_source_checksum_header(h, meta);
  CHECK(h == http::header_list{{"x-amz-checksum-crc32c", "yZRlqg=="}});
  meta.checksum = "yZRlqg==-4";
  h.clear();
  add_source_checksum_header(h, meta);
  CHECK(h.empty());
  // The first read asks for the checksum; the later ranges need not.
  std::byte room[10];
  auto first = ranged_get_call("b", "k", room, 0, "", "", nullptr);
  REQUIRE(header(first, "x-amz-checksum-mode"));
  auto later = ranged_get_call("b", "k", room, 10, "", "", nullptr);
  CHECK_FALSE(header(later, "x-amz-checksum-mode"));
}
