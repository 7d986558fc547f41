#pragma once
// archie's asynchronous Google Cloud Storage client (JSON API): bearer-token requests over a
// pooled Beast connection (http::client), bodies sent from and read into caller buffers,
// typed errors parsed from Google's JSON error body at the source, idempotent requests
// retried with backoff, resumable uploads resumed from the server's persisted offset.
//
// Uploads always go through a resumable session, small objects too (start + one PUT):
// http::client sends one body span, and multipart/related would need the payload copied
// between its two MIME boundaries; media uploads cannot carry custom metadata, and a
// follow-up PATCH would make the object visible without it. The extra round trip buys one
// code path with the metadata in the session and the server checking X-Goog-Hash.
//
// object_info mapping (get_object_metadata): size, contentType, contentEncoding,
// contentDisposition, cacheControl, metadata (user_metadata, names as stored), updated
// (last_modified), generation (version_id). etag is the lower-case hex MD5 when the object
// has an md5Hash (what an S3 single-PUT ETag is, so the two compare), else the JSON API
// etag (composite objects have no MD5).
#include "config/config.hpp"
#include "http/cut_group.hpp"
#include "http/send_budget.hpp"
#include "store/object_info.hpp"
#include "store/store_error.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

// GCC 12 rules 1-2 (async/gcc12_coroutines.hpp): no defaulted string or struct parameters
// here, and callers pass named objects.

namespace archie::store::gcs {

/// Resumable chunks (all but the last) must be multiples of this.
inline constexpr std::size_t chunk_quantum = 256 * 1024;

/// What the JSON API says about one object beyond object_info.
struct object_metadata {
  object_info info;
  std::int64_t generation = 0;
  std::int64_t metageneration = 0;
  std::string md5_base64;     ///< md5Hash; empty for composite objects
  std::string crc32c_base64;  ///< crc32c (base64 of the big-endian value)
  std::string json_etag;      ///< the JSON API etag (changes with metadata too)
};

struct listed_object {
  std::string name;
  std::uint64_t size = 0;
  std::int64_t generation = 0;
  std::string md5_base64;
};

struct list_page {
  std::vector<listed_object> objects;
  std::string next_page_token;  ///< empty on the last page
};

/// One generation of an object in a bucket with object versioning (objects.list versions=true).
struct object_generation {
  std::string name;
  bool live = false;  ///< no timeDeleted: the object's current generation (noncurrent ones have one)
  object_metadata meta;
};

struct generation_page {
  std::vector<object_generation> generations;  ///< by name, then generation ascending
  std::string next_page_token;                 ///< empty on the last page
};

/// JSON API preconditions; unset members are not sent. if_generation_match = 0 means "only
/// if the object does not exist yet".
struct preconditions {
  std::optional<std::int64_t> if_generation_match;
  std::optional<std::int64_t> if_metageneration_match;
  /// Not a condition: the request addresses this generation (a noncurrent one too) rather
  /// than the live object. A DELETE of a generation removes it for good.
  std::optional<std::int64_t> generation;
};

struct download_options {
  std::uint64_t offset = 0;                        ///< first byte; reads exactly into.size() bytes
  std::optional<std::int64_t> if_generation_match;  ///< all ranges from one generation
};

/// Whole-object hashes sent with the final request of an upload (base64; empty: not sent).
struct upload_hashes {
  std::string crc32c;
  std::string md5;
};

/// One resumable upload session. `uri` is the session URI's origin-form target: anyone
/// holding it can write the upload, so it is never logged or put in an error.
struct resumable_session {
  std::string bucket;
  std::string key;
  std::string uri;
  std::uint64_t total = 0;      ///< object size declared when the session started
  std::uint64_t persisted = 0;  ///< bytes the server has confirmed (308 Range)
  std::optional<object_metadata> result;  ///< the object, once the server finalized it
};

class token_provider;

class gcs_client {
 public:
  /// `blocking` (optional) takes the key-file read and JWT signing off the I/O thread.
  /// Throws std::invalid_argument when cfg.endpoint is not a URL (a scheme-less endpoint
  /// means https).
  /// `budget` (optional) paces the requests and bodies sent (a fleet budget).
  gcs_client(boost::asio::any_io_executor executor, std::string store_name, const config::gcs_store_config& cfg,
             boost::asio::thread_pool* blocking = nullptr, std::shared_ptr<http::send_budget> budget = nullptr);
  ~gcs_client();

  async_result<object_metadata> get_object_metadata(const std::string& bucket, const std::string& key);
  /// One generation's resource, noncurrent ones included (404 when it is gone).
  async_result<object_metadata> get_object_metadata(const std::string& bucket, const std::string& key,
                                                    std::int64_t generation);
  /// Every generation of `key` (live and noncurrent), newest first; needs storage.objects.list.
  async_result<std::vector<object_generation>> list_generations(const std::string& bucket, const std::string& key);
  /// Whether the bucket keeps noncurrent generations (versioning.enabled); needs storage.buckets.get.
  async_result<bool> bucket_versioning(const std::string& bucket);
  /// alt=media: reads into.size() bytes from opts.offset straight into `into` (ranged GET;
  /// the whole object when `into` is empty, which is only right for 0-byte objects). Sent
  /// with Accept-Encoding: gzip so gzip-encoded objects come back as stored. The returned
  /// metadata comes from response headers: size, generation, hashes, content type/encoding/
  /// disposition and x-goog-meta-*; not cache_control (the header is a serving default).
  async_result<object_metadata> download(const std::string& bucket, const std::string& key, std::span<std::byte> into,
                                 const download_options& opts);
  async_result<done> delete_object(const std::string& bucket, const std::string& key, const preconditions& pre);
  /// Sets (or, empty, removes) the object's tags, kept in custom metadata (requests::tags_metadata).
  async_result<done> set_tags(const std::string& bucket, const std::string& key, const preconditions& pre,
                              const std::string& tagging);
  async_result<list_page> list_objects(const std::string& bucket, const std::string& prefix, const std::string& page_token,
                               int max_results);
  /// The reachability and permission probe: a listing of one object, which needs only
  /// storage.objects.list (in roles/storage.objectAdmin), not storage.buckets.get.
  async_result<done> probe_bucket(const std::string& bucket);

  /// A whole object in one go (a resumable session, one PUT with X-Goog-Hash crc32c+md5).
  async_result<object_metadata> upload_object(const std::string& bucket, const std::string& key,
                                      std::span<const std::byte> body, const object_info& meta,
                                      const preconditions& pre, const config::write_options* write = nullptr);

  /// Starts a session for an object of `size` bytes with meta's content type, encoding,
  /// disposition, cache control and user metadata. Safe to retry (an unused session costs
  /// nothing and expires after a week).
  async_result<resumable_session> start_resumable_upload(const std::string& bucket, const std::string& key,
                                                 const object_info& meta, std::uint64_t size,
                                                 const preconditions& pre, http::cut_group* cut = nullptr,
                                                 const config::write_options* write = nullptr);
  /// Sends `bytes`, which start at `offset` of the object, in order: what the server has
  /// already persisted is skipped, a short 308 Range makes the rest go again, and a failed
  /// request (connection lost, 5xx, 429) is followed by a status query and a resend from the
  /// server's offset. A non-final chunk must end on a chunk_quantum boundary. `final` sends
  /// Content-Range .../total with `hashes` (X-Goog-Hash) and finalizes the object (empty
  /// `bytes` finalizes with "bytes */total"); session.result then holds the object.
  /// `cut`: the copy's group; once it is cut, the chunk is not sent again.
  async_result<done> upload_chunk(resumable_session& session, std::uint64_t offset, std::span<const std::byte> bytes,
                          bool final, const upload_hashes& hashes, http::cut_group* cut = nullptr);
  /// Status query ("Content-Range: bytes */*"): updates session.persisted, or session.result
  /// when the upload is already complete.
  async_result<done> query_resumable_upload(resumable_session& session);
  /// Cancels the session (DELETE; 499). A session that is already gone counts as cancelled.
  async_result<done> cancel_resumable_upload(resumable_session& session);

  const std::string& store_name() const;
  std::size_t connections_opened() const;
  /// Shutdown past its deadline: see http::client::abort_all.
  void abort_requests();
  /// Access tokens fetched so far (0 for a static token).
  std::size_t token_fetches() const;
  const std::string& credential_source() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace archie::store::gcs
