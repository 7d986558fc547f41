#include "store/s3/s3_requests.hpp"

#include "store/s3/sigv4.hpp"

#include <algorithm>

namespace archie::store::s3::requests {

std::string canonical_query_string(const query_list& query) {
  std::vector<std::pair<std::string, std::string>> enc;
  for (const auto& [k, v] : query) enc.emplace_back(uri_encode(k, true), uri_encode(v, true));
  std::sort(enc.begin(), enc.end());
  std::string out;
  for (const auto& [k, v] : enc) out += (out.empty() ? "" : "&") + k + "=" + v;
  return out;
}

error_kind classify(int status, std::string_view code) {
  if (code == "NoSuchKey" || code == "NoSuchBucket" || code == "NoSuchUpload" || code == "NotFound" || status == 404)
    return error_kind::not_found;
  if (status == 412 || code == "PreconditionFailed") return error_kind::precondition_failed;
  // BadDigest / XAmzContentSHA256Mismatch: the body the server got is not the one we hashed
  // (damaged on the way); sending it again can succeed.
  if (code == "SlowDown" || code == "RequestTimeout" || code == "InternalError" || code == "ServiceUnavailable" ||
      code == "RequestTimeTooSkewed" || code == "BadDigest" || code == "XAmzContentSHA256Mismatch" ||
      status >= 500 || status == 429)
    return error_kind::retryable;
  if (status == 403 || status == 401 || code == "AccessDenied" || code == "SignatureDoesNotMatch" ||
      code == "InvalidAccessKeyId")
    return error_kind::permission;
  return error_kind::permanent;
}

bool credentials_refused(const store_error& e) {
  return e.code == "ExpiredToken" || e.code == "InvalidAccessKeyId" || e.code == "InvalidToken" ||
         e.code == "TokenRefreshRequired";
}

bool maybe_credentials_refused(const store_error& e) { return e.http_status == 403 && e.code == "HTTP403"; }

void add_metadata_headers(http::header_list& h, const object_info& meta) {
  if (!meta.content_type.empty()) h.emplace_back("content-type", meta.content_type);
  if (!meta.content_encoding.empty()) h.emplace_back("content-encoding", meta.content_encoding);
  if (!meta.content_disposition.empty()) h.emplace_back("content-disposition", meta.content_disposition);
  if (!meta.cache_control.empty()) h.emplace_back("cache-control", meta.cache_control);
  for (const auto& [k, v] : meta.user_metadata) h.emplace_back("x-amz-meta-" + k, v);
}

call make_call(const char* operation, const char* method, const std::string& bucket, const std::string& key,
               query_list query, http::header_list headers,
               std::span<const std::byte> body, std::span<std::byte> into) {
  return call{operation, method, bucket, key, std::move(query), std::move(headers), body, into};
}

call ranged_get_call(const std::string& bucket, const std::string& key, std::span<std::byte> into,
                     std::uint64_t offset, const std::string& if_match, http::cut_group* cut) {
  http::header_list h;
  if (!into.empty())
    h.emplace_back("range", "bytes=" + std::to_string(offset) + "-" + std::to_string(offset + into.size() - 1));
  if (!if_match.empty()) h.emplace_back("if-match", "\"" + if_match + "\"");
  call c = make_call("GetObject", "GET", bucket, key, {}, std::move(h), {}, into);
  c.into_may_end_early = true;
  c.cut = cut;
  return c;
}

call upload_part_call(const std::string& bucket, const std::string& key, const std::string& upload_id, int part_number,
                      const part_body& body) {
  call c{"UploadPart", "PUT", bucket, key, {{"partNumber", std::to_string(part_number)}, {"uploadId", upload_id}},
         {}, body.bytes(), {}};
  c.digests = &body;
  return c;
}

call complete_call(const std::string& bucket, const std::string& key, const std::string& upload_id,
                   std::span<const std::byte> body) {
  return {"CompleteMultipartUpload", "POST", bucket, key, {{"uploadId", upload_id}},
          {{"content-type", "application/xml"}}, body, {}};
}

call abort_call(const std::string& bucket, const std::string& key, const std::string& upload_id) {
  return {"AbortMultipartUpload", "DELETE", bucket, key, {{"uploadId", upload_id}}, {}, {}, {}};
}

call copy_call(const std::string& src_bucket, const std::string& src_key, const std::string& dst_bucket,
               const std::string& dst_key, const object_info* replace) {
  call c{"CopyObject", "PUT", dst_bucket, dst_key, {}, {{"x-amz-copy-source", uri_encode("/" + src_bucket + "/" + src_key, false)}}, {}, {}};
  if (replace) {
    c.headers.emplace_back("x-amz-metadata-directive", "REPLACE");
    add_metadata_headers(c.headers, *replace);
    // Copy exactly the version whose metadata we write: an overwrite between our HEAD and
    // this copy must fail (412), not give new bytes labelled with the old ETag.
    if (!replace->etag.empty()) c.headers.emplace_back("x-amz-copy-source-if-match", "\"" + replace->etag + "\"");
  }
  return c;
}

call part_copy_call(const std::string& src_bucket, const std::string& src_key, std::uint64_t first, std::uint64_t last,
                    const std::string& dst_bucket, const std::string& dst_key, const std::string& upload_id,
                    int part_number) {
  return {"UploadPartCopy", "PUT", dst_bucket, dst_key,
          {{"partNumber", std::to_string(part_number)}, {"uploadId", upload_id}},
          {{"x-amz-copy-source", uri_encode("/" + src_bucket + "/" + src_key, false)},
           {"x-amz-copy-source-range", "bytes=" + std::to_string(first) + "-" + std::to_string(last)}},
          {}, {}};
}

store_error missing_upload_id(const std::string& store, const std::string& bucket, const std::string& key, int status) {
  return store_error{error_kind::retryable, store, "CreateMultipartUpload", bucket, key, status, "MissingUploadId",
                     "response carried no UploadId", ""};
}

store_error missing_content_length(const std::string& store, const std::string& bucket, const std::string& key,
                                   int status) {
  return store_error{error_kind::retryable, store, "HeadObject", bucket, key, status, "MissingContentLength",
                     "HEAD answer carried no Content-Length (a proxy in the way?)", ""};
}

}  // namespace archie::store::s3::requests
