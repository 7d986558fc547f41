#include "store/s3/s3_requests.hpp"

#include "http/ascii_case.hpp"
#include "http/percent_encoding.hpp"
#include "store/s3/sigv4.hpp"
#include "store/s3/xml_reader.hpp"

#include <algorithm>
#include <cctype>

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
  // A feature the server does not have (tagging on R2, object lock elsewhere): 501, for good.
  if (code == "NotImplemented") return error_kind::permanent;
  // BadDigest / XAmzContentSHA256Mismatch: the body the server got is not the one we hashed
  // (damaged on the way); sending it again can succeed. OperationAborted (409): another
  // operation on the object was in progress (RGW answers a tag write so); S3 says try again.
  if (code == "SlowDown" || code == "RequestTimeout" || code == "InternalError" || code == "ServiceUnavailable" ||
      code == "RequestTimeTooSkewed" || code == "BadDigest" || code == "XAmzContentSHA256Mismatch" ||
      code == "OperationAborted" || status >= 500 || status == 429)
    return error_kind::retryable;
  if (status == 403 || status == 401 || code == "AccessDenied" || code == "SignatureDoesNotMatch" ||
      code == "InvalidAccessKeyId")
    return error_kind::permission;
  return error_kind::permanent;
}

store_error recognise_customer_key(store_error e) {
  if (e.http_status != 400) return e;
  const std::string lower = http::ascii_lower(e.message);
  const bool encryption = lower.find("server side encryption") != std::string::npos ||
                          lower.find("server-side encryption") != std::string::npos ||
                          lower.find("form of sse") != std::string::npos;
  if (!encryption) return e;
  e.kind = error_kind::permanent;
  e.code = customer_key_code;
  e.message = "the object is encrypted with a customer-provided key (SSE-C); archie does not hold such keys "
              "and does not copy ciphertext (server said: " + e.message + ")";
  return e;
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
  if (!meta.content_language.empty()) h.emplace_back("content-language", meta.content_language);
  if (!meta.expires.empty()) h.emplace_back("expires", meta.expires);
  if (!meta.website_redirect.empty()) h.emplace_back("x-amz-website-redirect-location", meta.website_redirect);
  for (const auto& [k, v] : meta.user_metadata) h.emplace_back("x-amz-meta-" + k, v);
}

void add_write_options(http::header_list& h, const config::write_options* write) {
  if (!write) return;
  if (!write->storage_class.empty()) h.emplace_back("x-amz-storage-class", write->storage_class);
  if (!write->server_side_encryption.empty()) h.emplace_back("x-amz-server-side-encryption", write->server_side_encryption);
  if (!write->sse_kms_key_id.empty()) h.emplace_back("x-amz-server-side-encryption-aws-kms-key-id", write->sse_kms_key_id);
  if (!write->acl.empty()) h.emplace_back("x-amz-acl", write->acl);
}

void add_object_lock_headers(http::header_list& h, const object_info& meta, const config::write_options* write) {
  if (!write || !write->copy_object_lock) return;
  if (!meta.lock_mode.empty() && !meta.lock_retain_until.empty()) {
    h.emplace_back("x-amz-object-lock-mode", meta.lock_mode);
    h.emplace_back("x-amz-object-lock-retain-until-date", meta.lock_retain_until);
  }
  if (meta.legal_hold == "ON") h.emplace_back("x-amz-object-lock-legal-hold", "ON");
}

void add_source_checksum_header(http::header_list& h, const object_info& meta) {
  if (meta.checksum_algorithm.empty() || meta.checksum.empty() || meta.checksum.find('-') != std::string::npos) return;
  h.emplace_back("x-amz-checksum-" + meta.checksum_algorithm, meta.checksum);
}

std::string retention_document(const object_info& wanted) {
  std::string xml = "<Retention xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">";
  if (!wanted.lock_mode.empty())
    xml += "<Mode>" + xml_escape(wanted.lock_mode) + "</Mode><RetainUntilDate>" + xml_escape(wanted.lock_retain_until) +
           "</RetainUntilDate>";
  return xml + "</Retention>";
}

std::string legal_hold_document(bool on) {
  return std::string("<LegalHold xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Status>") + (on ? "ON" : "OFF") +
         "</Status></LegalHold>";
}

void add_tagging_header(http::header_list& h, const object_info& meta) {
  if (!meta.tagging.empty()) h.emplace_back("x-amz-tagging", meta.tagging);
}

std::string canonical_tagging(std::vector<std::pair<std::string, std::string>> tags) {
  for (auto& [k, v] : tags) {
    k = uri_encode(k, true);
    v = uri_encode(v, true);
  }
  std::sort(tags.begin(), tags.end());
  std::string out;
  for (const auto& [k, v] : tags) out += (out.empty() ? "" : "&") + k + "=" + v;
  return out;
}

namespace {

// The pairs of a canonical tag string, decoded.
std::vector<std::pair<std::string, std::string>> tag_pairs(const std::string& tagging) {
  std::vector<std::pair<std::string, std::string>> out;
  std::size_t at = 0;
  while (at < tagging.size()) {
    auto end = tagging.find('&', at);
    if (end == std::string::npos) end = tagging.size();
    std::string_view pair(tagging.data() + at, end - at);
    auto eq = pair.find('=');
    std::string_view k = pair.substr(0, eq), v = eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    out.emplace_back(http::percent_decode(k), http::percent_decode(v));
    at = end + 1;
  }
  return out;
}

}  // namespace

std::string tagging_document(const std::string& tagging) {
  std::string xml = "<Tagging xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><TagSet>";
  for (const auto& [k, v] : tag_pairs(tagging))
    xml += "<Tag><Key>" + xml_escape(k) + "</Key><Value>" + xml_escape(v) + "</Value></Tag>";
  return xml + "</TagSet></Tagging>";
}

std::string tagging_from_document(std::string_view xml) {
  std::vector<std::pair<std::string, std::string>> tags;
  for (auto tag : xml_elements(xml, "Tag"))
    tags.emplace_back(xml_first(tag, "Key").value_or(""), xml_first(tag, "Value").value_or(""));
  return canonical_tagging(std::move(tags));
}

call make_call(const char* operation, const char* method, const std::string& bucket, const std::string& key,
               query_list query, http::header_list headers,
               std::span<const std::byte> body, std::span<std::byte> into) {
  return call{operation, method, bucket, key, std::move(query), std::move(headers), body, into};
}

call ranged_get_call(const std::string& bucket, const std::string& key, std::span<std::byte> into,
                     std::uint64_t offset, const std::string& if_match, const std::string& version_id,
                     http::cut_group* cut) {
  http::header_list h;
  if (!into.empty())
    h.emplace_back("range", "bytes=" + std::to_string(offset) + "-" + std::to_string(offset + into.size() - 1));
  if (!if_match.empty()) h.emplace_back("if-match", "\"" + if_match + "\"");
  // The first read can tell the object's checksum too (AWS and MinIO leave it out of answers
  // to ranges; a server that sends it gets it checked).
  if (offset == 0) h.emplace_back("x-amz-checksum-mode", "ENABLED");
  query_list q;
  if (names_a_version(version_id)) q.emplace_back("versionId", version_id);
  call c = make_call("GetObject", "GET", bucket, key, std::move(q), std::move(h), {}, into);
  c.into_may_end_early = true;
  c.cut = cut;
  return c;
}

void let_answer_go_on(call& c, std::uint64_t offset, std::uint64_t to) {
  std::erase_if(c.headers, [](const auto& h) { return h.first == "range"; });
  // The whole object: a plain GET, the request servers serve most directly.
  if (to > offset) c.headers.emplace_back("range", "bytes=" + std::to_string(offset) + "-" + std::to_string(to - 1));
  else if (offset > 0) c.headers.emplace_back("range", "bytes=" + std::to_string(offset) + "-");
  c.into_may_continue = true;
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

namespace {

// ?<subresource>&versionId=... (the version left out for the current one of an unversioned bucket).
query_list version_query(const char* subresource, const std::string& version_id) {
  query_list q{{subresource, ""}};
  if (names_a_version(version_id)) q.emplace_back("versionId", version_id);
  return q;
}

}  // namespace

call get_tagging_call(const std::string& bucket, const std::string& key, const std::string& version_id) {
  return make_call("GetObjectTagging", "GET", bucket, key, version_query("tagging", version_id));
}

call put_tagging_call(const std::string& bucket, const std::string& key, const std::string& version_id,
                      std::span<const std::byte> document) {
  return make_call("PutObjectTagging", "PUT", bucket, key, version_query("tagging", version_id),
                   {{"content-type", "application/xml"}}, document);
}

call put_retention_call(const std::string& bucket, const std::string& key, const std::string& version_id,
                        std::span<const std::byte> document, bool bypass_governance) {
  call c = make_call("PutObjectRetention", "PUT", bucket, key, version_query("retention", version_id),
                     {{"content-type", "application/xml"}}, document);
  if (bypass_governance) c.headers.emplace_back("x-amz-bypass-governance-retention", "true");
  return c;
}

call put_legal_hold_call(const std::string& bucket, const std::string& key, const std::string& version_id,
                         std::span<const std::byte> document) {
  return make_call("PutObjectLegalHold", "PUT", bucket, key, version_query("legal-hold", version_id),
                   {{"content-type", "application/xml"}}, document);
}

call delete_tagging_call(const std::string& bucket, const std::string& key, const std::string& version_id) {
  return make_call("DeleteObjectTagging", "DELETE", bucket, key, version_query("tagging", version_id));
}

call abort_call(const std::string& bucket, const std::string& key, const std::string& upload_id) {
  return {"AbortMultipartUpload", "DELETE", bucket, key, {{"uploadId", upload_id}}, {}, {}, {}};
}

call copy_call(const std::string& src_bucket, const std::string& src_key, const std::string& dst_bucket,
               const std::string& dst_key, const object_info* replace) {
  // The version rides in the copy source as a query: "/bucket/key?versionId=...".
  std::string copy_source = uri_encode("/" + src_bucket + "/" + src_key, false);
  if (replace && names_a_version(replace->version_id)) copy_source += "?versionId=" + uri_encode(replace->version_id, true);
  call c{"CopyObject", "PUT", dst_bucket, dst_key, {}, {{"x-amz-copy-source", std::move(copy_source)}}, {}, {}};
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
