// S3 answers (src/store/s3/s3_response.cpp): object headers, error bodies, ListObjectsV2 and
// ListMultipartUploads pages, read from one fuzz input in the format of fuzz_support.hpp
// (status line, headers, blank line, body), and ListObjectVersions pages. The ETag bodies of CompleteMultipartUpload,
// CopyObject and UploadPartCopy, and CreateMultipartUpload's UploadId, are read the way
// s3_client.cpp reads them. A ranged GET's Content-Range is judged as the reader does
// (store/range_answer.hpp): what it accepts must lie inside the range asked.
#include "store/range_answer.hpp"
#include "store/s3/s3_response.hpp"
#include "store/s3/xml_reader.hpp"
#include "tests/fuzz/fuzz_support.hpp"

using namespace archie::store::s3;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto r = archie::fuzz::response_from_bytes(archie::fuzz::as_text(data, size));

  auto info = info_from_headers(r);
  const std::string* last_etag = nullptr;  // the last ETag header wins
  for (const auto& [name, value] : r.headers)
    if (name == "etag") last_etag = &value;
  if (last_etag) FUZZ_REQUIRE(info.etag == *last_etag || "\"" + info.etag + "\"" == *last_etag);
  for (const auto& [name, value] : info.user_metadata) FUZZ_REQUIRE(r.header("x-amz-meta-" + name).has_value());

  auto err = parse_error(r);
  if (err.request_id.empty())
    FUZZ_REQUIRE(r.header("x-amz-request-id").value_or("").empty() || xml_first(r.body, "RequestId"));

  auto page = parse_list_objects(r.body);
  FUZZ_REQUIRE(page.objects.size() == xml_elements(r.body, "Contents").size());
  if (!page.next_continuation_token.empty()) FUZZ_REQUIRE(xml_first(r.body, "IsTruncated") == "true");

  auto uploads = parse_multipart_uploads(r.body);
  FUZZ_REQUIRE(uploads.uploads.size() == xml_elements(r.body, "Upload").size());
  if (!uploads.truncated) FUZZ_REQUIRE(uploads.next_key_marker.empty() && uploads.next_upload_id_marker.empty());

  auto versions = parse_object_versions(r.body);
  FUZZ_REQUIRE(versions.entries.size() ==
               xml_elements(r.body, "Version").size() + xml_elements(r.body, "DeleteMarker").size());
  for (const auto& [key, v] : versions.entries) FUZZ_REQUIRE(!v.delete_marker || (v.etag.empty() && v.size == 0));
  if (!versions.truncated) FUZZ_REQUIRE(versions.next_key_marker.empty() && versions.next_version_id_marker.empty());

  if (auto cr = r.header("content-range")) {
    if (auto parsed = archie::store::parse_content_range(*cr)) {
      FUZZ_REQUIRE(parsed->first <= parsed->last);
      if (parsed->total) FUZZ_REQUIRE(parsed->last < *parsed->total);
      // Asked: the parsed range's first byte, as many bytes as the body has, or fewer.
      const std::size_t asked = r.body.size() + 1;
      auto judged = archie::store::judge_range_answer(206, cr, parsed->first, asked, r.body.size(), true);
      if (judged.error.empty()) FUZZ_REQUIRE(judged.received == r.body.size() && judged.received <= asked);
    }
  }

  auto etag = unquote(xml_first(r.body, "ETag").value_or(""));
  auto upload_id = xml_first(r.body, "UploadId");
  (void)etag;
  (void)upload_id;
  return 0;
}
