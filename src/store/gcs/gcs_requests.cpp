#include "store/gcs/gcs_requests.hpp"

#include "http/percent_encoding.hpp"
#include "store/checksum.hpp"

#include <boost/json.hpp>

#include <stdexcept>

namespace archie::store::gcs::requests {
namespace json = boost::json;
using namespace std::chrono_literals;
using http::percent_encode;

error_kind classify(int status) {
  if (status == 404) return error_kind::not_found;
  if (status == 401 || status == 403) return error_kind::permission;
  if (status == 412) return error_kind::precondition_failed;
  // 410: the upload session is over (expired, cancelled, failed); a new upload will do.
  if (status == 408 || status == 410 || status == 429 || status >= 500) return error_kind::retryable;
  return error_kind::permanent;
}

static void add_query(std::string& target, std::string_view name, const std::string& value) {
  target += target.find('?') == std::string::npos ? '?' : '&';
  target += name;
  target += '=';
  target += percent_encode(value);
}

static void add_preconditions(std::string& target, const preconditions& pre) {
  if (pre.generation) add_query(target, "generation", std::to_string(*pre.generation));
  if (pre.if_generation_match) add_query(target, "ifGenerationMatch", std::to_string(*pre.if_generation_match));
  if (pre.if_metageneration_match)
    add_query(target, "ifMetagenerationMatch", std::to_string(*pre.if_metageneration_match));
}

std::string metadata_json(const object_info& meta, const config::write_options* write) {
  json::object o;
  if (write && !write->storage_class.empty()) o["storageClass"] = write->storage_class;
  if (!meta.content_type.empty()) o["contentType"] = meta.content_type;
  if (!meta.content_encoding.empty()) o["contentEncoding"] = meta.content_encoding;
  if (!meta.content_disposition.empty()) o["contentDisposition"] = meta.content_disposition;
  if (!meta.cache_control.empty()) o["cacheControl"] = meta.cache_control;
  if (!meta.content_language.empty()) o["contentLanguage"] = meta.content_language;
  json::object md;
  for (const auto& [k, v] : meta.user_metadata) md[k] = v;
  // What the JSON API has no field for travels in custom metadata under archie's names.
  if (!meta.tagging.empty()) md[tags_metadata] = meta.tagging;
  if (!meta.expires.empty()) md[expires_metadata] = meta.expires;
  if (!meta.website_redirect.empty()) md[website_redirect_metadata] = meta.website_redirect;
  if (!md.empty()) o["metadata"] = std::move(md);
  return json::serialize(o);
}

// The session URI's origin-form target ("/upload/storage/v1/b/...&upload_id=..."); it is
// sent to the configured endpoint (Google answers with its own host there).
std::string origin_form(const std::string& location) {
  if (!location.empty() && location.front() == '/') return location;
  auto scheme = location.find("://");
  if (scheme == std::string::npos) return {};
  auto slash = location.find('/', scheme + 3);
  return slash == std::string::npos ? std::string("/") : location.substr(slash);
}

upload_hashes whole_object_hashes(std::span<const std::byte> body) {
  upload_hashes h;
  h.crc32c = crc32c_base64(crc32c(body));
  h.md5 = content_md5(body);
  return h;
}

config::backoff_config retry_backoff() { return config::backoff_config{200ms, 2.0, 5000ms, 0.3}; }

http::endpoint storage_endpoint(const std::string& store, const std::string& url) {
  auto ep = http::parse_endpoint(url.find("://") == std::string::npos ? "https://" + url : url);
  if (!ep) throw std::invalid_argument("store " + store + ": endpoint \"" + url + "\" is not an http(s) URL");
  return *ep;
}

call make_call(const char* operation, const char* method, const std::string& bucket, const std::string& key,
               std::string target) {
  call c;
  c.operation = operation;
  c.method = method;
  c.bucket = bucket;
  c.key = key;
  c.target = std::move(target);
  return c;
}

static std::string bucket_path(const std::string& base, const std::string& bucket) {
  return base + "/storage/v1/b/" + percent_encode(bucket);
}

static std::string object_path(const std::string& base, const std::string& bucket, const std::string& key) {
  return bucket_path(base, bucket) + "/o/" + percent_encode(key);
}

call metadata_call(const std::string& base, const std::string& bucket, const std::string& key) {
  return make_call("GetObjectMetadata", "GET", bucket, key, object_path(base, bucket, key));
}

call generation_metadata_call(const std::string& base, const std::string& bucket, const std::string& key,
                              std::int64_t generation) {
  std::string target = object_path(base, bucket, key);
  add_query(target, "generation", std::to_string(generation));
  return make_call("GetObjectMetadata", "GET", bucket, key, std::move(target));
}

call generations_call(const std::string& base, const std::string& bucket, const std::string& key,
                      const std::string& page_token) {
  std::string target = bucket_path(base, bucket) + "/o?versions=true";
  add_query(target, "prefix", key);
  add_query(target, "fields", "items(name,generation,metageneration,size,md5Hash,crc32c,etag,timeDeleted,metadata),"
                              "nextPageToken");
  if (!page_token.empty()) add_query(target, "pageToken", page_token);
  return make_call("ListObjectGenerations", "GET", bucket, key, std::move(target));
}

call versioning_call(const std::string& base, const std::string& bucket) {
  std::string target = bucket_path(base, bucket);
  add_query(target, "fields", "versioning");
  return make_call("GetBucketVersioning", "GET", bucket, "", std::move(target));
}

call download_call(const std::string& base, const std::string& bucket, const std::string& key,
                   std::span<std::byte> into, const download_options& opts) {
  std::string target = object_path(base, bucket, key) + "?alt=media";
  if (opts.if_generation_match) add_query(target, "ifGenerationMatch", std::to_string(*opts.if_generation_match));
  call c = make_call("DownloadObject", "GET", bucket, key, std::move(target));
  if (!into.empty())
    c.headers.emplace_back("range", "bytes=" + std::to_string(opts.offset) + "-" +
                                        std::to_string(opts.offset + into.size() - 1));
  c.headers.emplace_back("accept-encoding", "gzip");  // stored bytes, no decompressive transcoding
  c.into = into;
  return c;
}

call delete_call(const std::string& base, const std::string& bucket, const std::string& key, const preconditions& pre) {
  std::string target = object_path(base, bucket, key);
  add_preconditions(target, pre);
  return make_call("DeleteObject", "DELETE", bucket, key, std::move(target));
}

call patch_call(const std::string& base, const std::string& bucket, const std::string& key, const preconditions& pre,
                std::span<const std::byte> body) {
  std::string target = object_path(base, bucket, key);
  add_preconditions(target, pre);
  add_query(target, "fields", "generation,metageneration");
  call c = make_call("PatchObject", "PATCH", bucket, key, std::move(target));
  c.headers.emplace_back("content-type", "application/json");
  c.body = body;
  return c;
}

void lift_archie_metadata(object_info& info) {
  std::erase_if(info.user_metadata, [&info](auto& kv) {
    std::string* field = kv.first == tags_metadata               ? &info.tagging
                         : kv.first == expires_metadata          ? &info.expires
                         : kv.first == website_redirect_metadata ? &info.website_redirect
                                                                 : nullptr;
    if (field) *field = std::move(kv.second);
    return field != nullptr;
  });
}

std::string tags_patch_json(const std::string& tagging) {
  json::object md;
  if (tagging.empty()) md[tags_metadata] = nullptr;
  else md[tags_metadata] = tagging;
  json::object o;
  o["metadata"] = std::move(md);
  return json::serialize(o);
}

call list_call(const std::string& base, const std::string& bucket, const std::string& prefix,
               const std::string& page_token, int max_results) {
  std::string target = bucket_path(base, bucket) + "/o";
  add_query(target, "fields", "items(name,size,generation,md5Hash),nextPageToken");
  add_query(target, "maxResults", std::to_string(max_results));
  if (!prefix.empty()) add_query(target, "prefix", prefix);
  if (!page_token.empty()) add_query(target, "pageToken", page_token);
  return make_call("ListObjects", "GET", bucket, "", std::move(target));
}

call start_call(const std::string& base, const std::string& bucket, const std::string& key, const object_info& meta,
                std::uint64_t size, const preconditions& pre, std::span<const std::byte> body,
                const config::write_options* write) {
  std::string target = base + "/upload/storage/v1/b/" + percent_encode(bucket) + "/o?uploadType=resumable";
  add_query(target, "name", key);
  if (write && !write->kms_key_name.empty()) add_query(target, "kmsKeyName", write->kms_key_name);
  add_preconditions(target, pre);
  call c = make_call("StartResumableUpload", "POST", bucket, key, std::move(target));
  c.headers.emplace_back("content-type", "application/json; charset=UTF-8");
  c.headers.emplace_back("x-upload-content-length", std::to_string(size));
  if (!meta.content_type.empty()) c.headers.emplace_back("x-upload-content-type", meta.content_type);
  c.body = body;
  return c;
}

// The bytes of [offset, offset + bytes.size()) that the server does not have yet; the caller
// checks offset <= s.persisted <= end.
call chunk_call(const resumable_session& s, std::uint64_t offset, std::span<const std::byte> bytes, bool final,
                const upload_hashes& hashes) {
  auto rest = bytes.subspan(static_cast<std::size_t>(s.persisted - offset));
  call c = make_call("UploadChunk", "PUT", s.bucket, s.key, s.uri);
  c.auth = false;
  c.resumable = true;
  c.attempts = 1;  // a failed chunk is followed by a status query, not a blind resend
  std::string total = final ? std::to_string(s.total) : std::string("*");
  if (rest.empty())
    c.headers.emplace_back("content-range", "bytes */" + total);
  else
    c.headers.emplace_back("content-range", "bytes " + std::to_string(s.persisted) + "-" +
                                                std::to_string(s.persisted + rest.size() - 1) + "/" + total);
  if (final) {
    std::string h;
    if (!hashes.crc32c.empty()) h = "crc32c=" + hashes.crc32c;
    if (!hashes.md5.empty()) h += (h.empty() ? "" : ",") + std::string("md5=") + hashes.md5;
    if (!h.empty()) c.headers.emplace_back("x-goog-hash", h);
  }
  c.body = rest;
  return c;
}

call status_call(const resumable_session& s) {
  call c = make_call("QueryResumableUpload", "PUT", s.bucket, s.key, s.uri);
  c.auth = false;
  c.resumable = true;
  c.headers.emplace_back("content-range", "bytes */*");
  return c;
}

call cancel_call(const resumable_session& s) {
  call c = make_call("CancelResumableUpload", "DELETE", s.bucket, s.key, s.uri);
  c.auth = false;
  return c;
}

http::request build_request(const call& c) {
  http::request req;
  req.method = c.method;
  req.target = c.target;
  req.headers = c.headers;
  req.body = c.body;
  req.cut = c.cut;
  return req;
}

}  // namespace archie::store::gcs::requests
