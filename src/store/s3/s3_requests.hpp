#pragma once
// S3's requests as plain data, built without I/O: method, bucket, key, query, headers and
// body of each operation, and how an answer's status and error code are classified. The
// client signs and sends them (s3_client.cpp). Built by plain functions, outside coroutines
// (GCC 12 rule 3, async/gcc12_coroutines.hpp).
#include "config/config.hpp"
#include "http/client.hpp"
#include "store/object_info.hpp"
#include "store/part_body.hpp"
#include "store/store_error.hpp"

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace archie::store::s3::requests {

using query_list = std::vector<std::pair<std::string, std::string>>;

/// One S3 request before signing.
struct call {
  const char* operation;
  std::string method;
  std::string bucket;
  std::string key;
  query_list query;
  http::header_list headers;
  std::span<const std::byte> body;
  std::span<std::byte> into;
  bool idempotent = true;
  const part_body* digests = nullptr;  ///< the body's shared digests, for uploads of object data
  bool into_may_end_early = false;     ///< `into` is room for "up to" its size
  bool into_may_continue = false;      ///< the answer may go on past `into` (http::request::body_may_continue)
  http::cut_group* cut = nullptr;      ///< ends with this group (a cancelled copy)
};

/// SigV4's canonical query: names and values URI-encoded, sorted.
std::string canonical_query_string(const query_list& query);

/// The error kind of an answer's status and S3 error code.
error_kind classify(int status, std::string_view code);

/// Recognises a server's refusal to read an SSE-C object without its key (AWS and MinIO:
/// 400 InvalidRequest "...stored using a form of Server Side Encryption..."; RGW: 400
/// InvalidArgument "...Server Side Encryption with Customer provided keys...") and turns it
/// into a permanent error that says so. Other errors pass unchanged. archie never holds the
/// key, and copying such an object any other way would copy ciphertext or nothing.
store_error recognise_customer_key(store_error e);
/// The server no longer accepts the credentials themselves (rather than the request): fresh
/// ones may succeed, so the request is signed again once with them.
bool credentials_refused(const store_error& e);
/// A 403 without an error document (HEAD answers have no body) may be the same refusal.
bool maybe_credentials_refused(const store_error& e);

/// Content headers and x-amz-meta-* for a write.
void add_metadata_headers(http::header_list& h, const object_info& meta);
/// x-amz-checksum-<algorithm> with the source's whole-object checksum (none for a composite
/// one): the destination checks the body against it and keeps it, as S3 PutObject does.
void add_source_checksum_header(http::header_list& h, const object_info& meta);
/// A destination's storage class, server-side encryption and canned ACL for a write
/// (PutObject, CreateMultipartUpload, CopyObject); nothing for null or empty options.
void add_write_options(http::header_list& h, const config::write_options* write);
/// The source's retention and legal hold on a write, when the destination copies object lock.
void add_object_lock_headers(http::header_list& h, const object_info& meta, const config::write_options* write);
/// PutObjectRetention of one version; an empty mode removes the retention (governance only,
/// with the bypass header). PutObjectLegalHold of one version.
call put_retention_call(const std::string& bucket, const std::string& key, const std::string& version_id,
                        std::span<const std::byte> document, bool bypass_governance);
call put_legal_hold_call(const std::string& bucket, const std::string& key, const std::string& version_id,
                         std::span<const std::byte> document);
std::string retention_document(const object_info& wanted);
std::string legal_hold_document(bool on);
/// x-amz-tagging for a new object (PutObject, CreateMultipartUpload) that has tags. Not for
/// CopyObject: with the metadata replaced, RGW 16 drops the tags and stores a tag set it
/// cannot read back when x-amz-tagging-directive is REPLACE; the engine sets them after.
void add_tagging_header(http::header_list& h, const object_info& meta);
/// <Tagging> document of PutObjectTagging for a canonical tag string.
std::string tagging_document(const std::string& tagging);
/// The canonical tag string of a GetObjectTagging answer.
std::string tagging_from_document(std::string_view xml);
/// Tag pairs in canonical form: keys sorted, keys and values URI-encoded, "k=v&k2=v2".
std::string canonical_tagging(std::vector<std::pair<std::string, std::string>> tags);

/// Whether a version ID names one version to ask for (empty: the current one). "null" is a
/// version like any other: the one written while versioning was off, which on a versioned
/// bucket may lie under newer ones. Servers that report it (MinIO, RGW) accept
/// ?versionId=null, also on unversioned buckets; AWS and RGW report no ID there.
inline bool names_a_version(const std::string& version_id) { return !version_id.empty(); }

call make_call(const char* operation, const char* method, const std::string& bucket, const std::string& key,
               query_list query = {}, http::header_list headers = {}, std::span<const std::byte> body = {},
               std::span<std::byte> into = {});
/// A GET of into.size() bytes from `offset` (the whole object when `into` is empty), only from
/// the version `version_id` names (the current one when empty) with the ETag `if_match` (any
/// when empty). Short answers are accepted here and judged
/// by get_object (store/range_answer.hpp), which completes or refuses them.
call ranged_get_call(const std::string& bucket, const std::string& key, std::span<std::byte> into,
                     std::uint64_t offset, const std::string& if_match, const std::string& version_id,
                     http::cut_group* cut);
/// Lets a ranged GET's answer go on to byte `to` (exclusive; 0: the object's end): the body
/// past `into` is left on the connection (http::request::body_may_continue).
void let_answer_go_on(call& c, std::uint64_t offset, std::uint64_t to);
call upload_part_call(const std::string& bucket, const std::string& key, const std::string& upload_id, int part_number,
                      const part_body& body);
call complete_call(const std::string& bucket, const std::string& key, const std::string& upload_id,
                   std::span<const std::byte> body);
call abort_call(const std::string& bucket, const std::string& key, const std::string& upload_id);
/// GetObjectTagging / PutObjectTagging / DeleteObjectTagging of one version (the current one
/// when `version_id` is empty). Some servers (RGW) answer a tag deletion without
/// a version on a versioned bucket with success and keep the tags: name the version.
call get_tagging_call(const std::string& bucket, const std::string& key, const std::string& version_id);
call put_tagging_call(const std::string& bucket, const std::string& key, const std::string& version_id,
                      std::span<const std::byte> document);
call delete_tagging_call(const std::string& bucket, const std::string& key, const std::string& version_id);
/// A server-side copy; with `replace`, the metadata is replaced by its and the copy is of
/// exactly the version its version ID and ETag name.
call copy_call(const std::string& src_bucket, const std::string& src_key, const std::string& dst_bucket,
               const std::string& dst_key, const object_info* replace);
call part_copy_call(const std::string& src_bucket, const std::string& src_key, std::uint64_t first, std::uint64_t last,
                    const std::string& dst_bucket, const std::string& dst_key, const std::string& upload_id,
                    int part_number);

store_error missing_upload_id(const std::string& store, const std::string& bucket, const std::string& key, int status);
store_error missing_content_length(const std::string& store, const std::string& bucket, const std::string& key,
                                   int status);

}  // namespace archie::store::s3::requests
