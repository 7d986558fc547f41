#pragma once
// The JSON API's requests as plain data, built without I/O: URL targets, query parameters,
// preconditions, headers and bodies for each operation, and how an HTTP status is classified.
// The client sends them (gcs_client.cpp), the resumable upload drives them (gcs_resumable_upload.cpp).
#include "config/config.hpp"
#include "http/client.hpp"
#include "http/endpoint.hpp"
#include "store/gcs/gcs_client.hpp"
#include "store/object_info.hpp"
#include "store/store_error.hpp"

#include <cstdint>
#include <span>
#include <string>

namespace archie::store::gcs::requests {

inline constexpr int max_attempts = 4;
inline constexpr int max_chunk_failures = 5;  ///< consecutive failed chunk requests that persisted nothing
inline constexpr int max_retry_after_seconds = 30;

/// One JSON API request before the token is added.
struct call {
  const char* operation = nullptr;
  std::string method;
  std::string bucket;
  std::string key;
  std::string target;  ///< origin-form, encoded
  http::header_list headers;
  std::span<const std::byte> body;
  std::span<std::byte> into;
  bool auth = true;        ///< false for session URI requests: the URI is the credential
  bool resumable = false;  ///< 308 Resume Incomplete is an answer, not an error
  int attempts = max_attempts;
  http::cut_group* cut = nullptr;  ///< ends with this group (a cancelled copy)
};

error_kind classify(int status);
/// The object resource of a write; `write` adds the destination's storageClass.
std::string metadata_json(const object_info& meta, const config::write_options* write = nullptr);
/// The session URI's origin-form target; empty when `location` is not a URL.
std::string origin_form(const std::string& location);
upload_hashes whole_object_hashes(std::span<const std::byte> body);
config::backoff_config retry_backoff();
/// Throws std::invalid_argument naming the store when `url` is not an http(s) URL.
http::endpoint storage_endpoint(const std::string& store, const std::string& url);

call make_call(const char* operation, const char* method, const std::string& bucket, const std::string& key,
               std::string target);
call metadata_call(const std::string& base, const std::string& bucket, const std::string& key);
call generation_metadata_call(const std::string& base, const std::string& bucket, const std::string& key,
                              std::int64_t generation);
/// objects.list versions=true of the names starting with `key` (the caller keeps `key`'s own).
call generations_call(const std::string& base, const std::string& bucket, const std::string& key,
                      const std::string& page_token);
/// buckets.get of the versioning field alone.
call versioning_call(const std::string& base, const std::string& bucket);
call download_call(const std::string& base, const std::string& bucket, const std::string& key,
                   std::span<std::byte> into, const download_options& opts);
call delete_call(const std::string& base, const std::string& bucket, const std::string& key, const preconditions& pre);
/// objects.patch of custom metadata only; `body` is a JSON object resource.
call patch_call(const std::string& base, const std::string& bucket, const std::string& key, const preconditions& pre,
                std::span<const std::byte> body);
/// The custom metadata keys that hold what the JSON API has no field for: an object's tags
/// (canonical form), its Expires date and its S3 website redirect.
inline constexpr const char* tags_metadata = "archie-tags";
inline constexpr const char* expires_metadata = "archie-expires";
inline constexpr const char* website_redirect_metadata = "archie-website-redirect";
/// Moves those keys out of info.user_metadata into their object_info fields.
void lift_archie_metadata(object_info& info);
/// {"metadata": {"archie-tags": tagging}}; a null value (tags removed) when `tagging` is empty.
std::string tags_patch_json(const std::string& tagging);
call list_call(const std::string& base, const std::string& bucket, const std::string& prefix,
               const std::string& page_token, int max_results);
/// `write` adds the destination's kmsKeyName (a query parameter of the insert).
call start_call(const std::string& base, const std::string& bucket, const std::string& key, const object_info& meta,
                std::uint64_t size, const preconditions& pre, std::span<const std::byte> body,
                const config::write_options* write = nullptr);
/// The bytes of [offset, offset + bytes.size()) that the server does not have yet; the caller
/// checks offset <= s.persisted <= end.
call chunk_call(const resumable_session& s, std::uint64_t offset, std::span<const std::byte> bytes, bool final,
                const upload_hashes& hashes);
call status_call(const resumable_session& s);
call cancel_call(const resumable_session& s);
http::request build_request(const call& c);

}  // namespace archie::store::gcs::requests
