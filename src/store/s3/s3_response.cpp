#include "store/s3/s3_response.hpp"

#include "store/s3/xml_reader.hpp"

#include <algorithm>
#include <charconv>

namespace archie::store::s3 {

std::string unquote(std::string s) {
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') return s.substr(1, s.size() - 2);
  return s;
}

std::string lock_date(std::string_view v) {
  // Servers differ in precision (RGW: nanoseconds, AWS and MinIO: none or milliseconds);
  // retention is set to the second, so compare and write it so.
  if (v.size() > 19 && v[10] == 'T') return std::string(v.substr(0, 19)) + "Z";
  return std::string(v);
}

bool is_checksum_algorithm(std::string_view name) {
  return name == "crc32" || name == "crc32c" || name == "crc64nvme" || name == "sha1" || name == "sha256";
}

object_info info_from_headers(const http::response& r) {
  object_info info;
  bool composite = false;
  for (const auto& [k, v] : r.headers) {
    if (k == "etag") info.etag = unquote(v);
    else if (k == "content-length") std::from_chars(v.data(), v.data() + v.size(), info.size);
    else if (k == "content-type") info.content_type = v;
    else if (k == "content-encoding") info.content_encoding = v;
    else if (k == "content-disposition") info.content_disposition = v;
    else if (k == "cache-control") info.cache_control = v;
    else if (k == "content-language") info.content_language = v;
    else if (k == "expires") info.expires = v;
    else if (k == "x-amz-website-redirect-location") info.website_redirect = v;
    else if (k == "last-modified") info.last_modified = v;
    else if (k == "x-amz-version-id") info.version_id = v;
    else if (k == "x-amz-tagging-count") std::from_chars(v.data(), v.data() + v.size(), info.tag_count);
    else if (k == "x-amz-object-lock-mode") info.lock_mode = v;
    else if (k == "x-amz-object-lock-retain-until-date") info.lock_retain_until = lock_date(v);
    else if (k == "x-amz-object-lock-legal-hold") info.legal_hold = v;
    else if (k.rfind("x-amz-meta-", 0) == 0) info.user_metadata.emplace_back(k.substr(11), v);
    else if (k.rfind("x-amz-checksum-", 0) == 0 && is_checksum_algorithm(k.substr(15))) {
      info.checksum_algorithm = k.substr(15);
      info.checksum = v;
    } else if (k == "x-amz-checksum-type") {
      composite = v == "COMPOSITE";
    }
  }
  // Said composite without the part count: still not the whole object's checksum.
  if (composite && !info.checksum.empty() && info.checksum.find('-') == std::string::npos) info.checksum += "-0";
  if (auto range = r.header("content-range")) {  // "bytes 0-99/1234": the total is what we want
    if (auto slash = range->rfind('/'); slash != std::string::npos)
      std::from_chars(range->data() + slash + 1, range->data() + range->size(), info.size);
  }
  return info;
}

error_fields parse_error(const http::response& r) {
  error_fields e;
  e.code = xml_first(r.body, "Code").value_or("");
  e.message = xml_first(r.body, "Message").value_or("");
  e.request_id = xml_first(r.body, "RequestId").value_or(r.header("x-amz-request-id").value_or(""));
  return e;
}

list_page parse_list_objects(std::string_view body) {
  list_page page;
  for (auto contents : xml_elements(body, "Contents")) {
    listed_object o;
    o.key = xml_first(contents, "Key").value_or("");
    auto size = xml_first(contents, "Size").value_or("0");
    std::from_chars(size.data(), size.data() + size.size(), o.size);
    o.etag = unquote(xml_first(contents, "ETag").value_or(""));
    page.objects.push_back(std::move(o));
  }
  if (xml_first(body, "IsTruncated").value_or("false") == "true")
    page.next_continuation_token = xml_first(body, "NextContinuationToken").value_or("");
  return page;
}

version_page parse_object_versions(std::string_view body) {
  version_page page;
  // <Version> and <DeleteMarker> interleave in history order: merge them by position.
  auto objects = xml_elements(body, "Version");
  auto markers = xml_elements(body, "DeleteMarker");
  std::vector<std::pair<std::string_view, bool>> all;
  for (auto v : objects) all.emplace_back(v, false);
  for (auto m : markers) all.emplace_back(m, true);
  std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.first.data() < b.first.data(); });
  for (const auto& [element, marker] : all) {
    object_version v;
    v.version_id = xml_first(element, "VersionId").value_or("");
    v.delete_marker = marker;
    v.latest = xml_first(element, "IsLatest").value_or("false") == "true";
    if (!marker) {
      v.etag = unquote(xml_first(element, "ETag").value_or(""));
      auto size = xml_first(element, "Size").value_or("0");
      std::from_chars(size.data(), size.data() + size.size(), v.size);
    }
    page.entries.emplace_back(xml_first(element, "Key").value_or(""), std::move(v));
  }
  page.truncated = xml_first(body, "IsTruncated").value_or("false") == "true";
  if (page.truncated) {
    page.next_key_marker = xml_first(body, "NextKeyMarker").value_or("");
    page.next_version_id_marker = xml_first(body, "NextVersionIdMarker").value_or("");
  }
  return page;
}

multipart_uploads_page parse_multipart_uploads(std::string_view body) {
  multipart_uploads_page page;
  for (auto u : xml_elements(body, "Upload"))
    page.uploads.push_back({xml_first(u, "Key").value_or(""), xml_first(u, "UploadId").value_or("")});
  page.truncated = xml_first(body, "IsTruncated").value_or("false") == "true";
  if (page.truncated) {
    page.next_key_marker = xml_first(body, "NextKeyMarker").value_or("");
    page.next_upload_id_marker = xml_first(body, "NextUploadIdMarker").value_or("");
  }
  return page;
}

}  // namespace archie::store::s3
