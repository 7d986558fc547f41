#pragma once
// archie's asynchronous S3 client: SigV4-signed requests over a pooled Beast connection,
// bodies sent from and read into caller buffers, typed errors classified at the source,
// idempotent requests retried with backoff. Works with AWS, MinIO, Ceph RGW and other
// S3-compatible servers (RGW quirks are tolerated where noted).
#include "config/config.hpp"
#include "http/cut_group.hpp"
#include "http/send_budget.hpp"
#include "store/part_body.hpp"
#include "store/object_info.hpp"
#include "store/object_version.hpp"
#include "store/store_error.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

// GCC 12 rules 1-2 (async/gcc12_coroutines.hpp): no defaulted string or struct parameters
// here, and callers pass named objects.

namespace archie::store {
class body_stream;  // store/source.hpp
}  // namespace archie::store

namespace archie::store::s3 {

struct listed_object {
  std::string key;
  std::uint64_t size = 0;
  std::string etag;
};

struct list_page {
  std::vector<listed_object> objects;
  std::string next_continuation_token;  ///< empty on the last page
};

struct completed_part {
  int number = 0;
  std::string etag;
};

struct multipart_upload {
  std::string key;
  std::string upload_id;
};

struct get_options {
  std::uint64_t offset = 0;    ///< first byte; reads exactly into.size() bytes
  std::string if_match;        ///< ETag the object must still have (all parts from one version)
  std::string version_id;      ///< the version to read (empty: the current one)
  bool may_end_early = false;  ///< the object may end before `into` is full (read "up to")
  http::cut_group* cut = nullptr;  ///< ends with this group (a cancelled copy)
  /// Set: the answer may go on to the object's end; *rest gets what `into` did not take
  /// (source.hpp range_read::rest). An eighth of the store's connections is never kept so.
  std::shared_ptr<body_stream>* rest = nullptr;
  std::uint64_t rest_to = 0;  ///< where the answer ends (exclusive); 0: the object's end
};

class s3_client {
 public:
  /// `budget` (optional) paces the requests and bodies sent (a fleet budget).
  s3_client(boost::asio::any_io_executor executor, std::string store_name, const config::s3_store_config& cfg,
            std::shared_ptr<http::send_budget> budget = nullptr);
  ~s3_client();

  /// The current version, or the one version_id names (empty: the current one).
  async_result<object_info> head_object(const std::string& bucket, const std::string& key,
                                        const std::string& version_id = {});
  /// Reads into.size() bytes starting at opts.offset straight into `into` (ranged GET).
  /// The returned info carries the object's ETag and total size.
  async_result<object_info> get_object(const std::string& bucket, const std::string& key, std::span<std::byte> into,
                               const get_options& opts);
  /// Returns the new ETag. The body carries one checksum the server verifies, so a corrupted
  /// body is refused: its SHA-256 in the signature, or Content-MD5 when the payload is unsigned.
  async_result<std::string> put_object(const std::string& bucket, const std::string& key, const part_body& body,
                               const object_info& meta, const config::write_options* write = nullptr);
  async_result<done> delete_object(const std::string& bucket, const std::string& key);
  /// Deletes one version (or delete marker) for good.
  async_result<done> delete_object_version(const std::string& bucket, const std::string& key,
                                           const std::string& version_id);
  /// Every version and delete marker of exactly `key`, newest first (ListObjectVersions).
  async_result<version_history> list_object_versions(const std::string& bucket, const std::string& key);
  /// One page of the versions of every key under `prefix` (empty markers: the first page).
  async_result<version_page> list_versions_page(const std::string& bucket, const std::string& prefix,
                                                const std::string& key_marker, const std::string& version_marker,
                                                int max_keys = 1000);
  async_result<list_page> list_objects(const std::string& bucket, const std::string& prefix,
                               const std::string& continuation_token, int max_keys);

  async_result<std::string> create_multipart_upload(const std::string& bucket, const std::string& key, const object_info& meta,
                                            http::cut_group* cut = nullptr,
                                            const config::write_options* write = nullptr);
  async_result<std::string> upload_part(const std::string& bucket, const std::string& key, const std::string& upload_id,
                                int part_number, const part_body& body);
  /// Returns the final ETag. RGW may answer with an empty one: with `etag_wanted` the client
  /// then HEADs for it; without, the result is empty (a caller that does not use it saves a
  /// request per object).
  async_result<std::string> complete_multipart_upload(const std::string& bucket, const std::string& key,
                                              const std::string& upload_id, const std::vector<completed_part>& parts,
                                              bool etag_wanted = true);
  async_result<done> abort_multipart_upload(const std::string& bucket, const std::string& key, const std::string& upload_id);
  async_result<std::vector<multipart_upload>> list_multipart_uploads(const std::string& bucket, const std::string& prefix,
                                                             http::cut_group* cut = nullptr);

  /// Server-side copy (objects up to 5 GiB). With `replace` the metadata is replaced, else copied.
  async_result<std::string> copy_object(const std::string& src_bucket, const std::string& src_key,
                                const std::string& dst_bucket, const std::string& dst_key,
                                const object_info* replace = nullptr, const config::write_options* write = nullptr);
  /// Server-side copy of bytes [first, last] of the source into one part.
  async_result<std::string> upload_part_copy(const std::string& src_bucket, const std::string& src_key, std::uint64_t first,
                                     std::uint64_t last, const std::string& dst_bucket, const std::string& dst_key,
                                     const std::string& upload_id, int part_number);
  /// The tags of one version (the current one when version_id is empty), canonical form.
  async_result<std::string> get_object_tagging(const std::string& bucket, const std::string& key,
                                               const std::string& version_id);
  /// Replaces the tags of one version; an empty `tagging` deletes them.
  async_result<done> put_object_tagging(const std::string& bucket, const std::string& key,
                                        const std::string& version_id, const std::string& tagging);
  /// Gives one version (replica.version_id) the retention and legal hold of `wanted`: only
  /// what differs from `replica` is sent.
  async_result<done> put_object_lock(const std::string& bucket, const std::string& key, const object_info& replica,
                                     const object_info& wanted);
  async_result<done> create_bucket(const std::string& bucket);
  async_result<done> head_bucket(const std::string& bucket);
  /// GetBucketVersioning's Status: "Enabled", "Suspended", or empty (never turned on).
  async_result<std::string> bucket_versioning(const std::string& bucket);

  /// [stores.NAME] parts_per_get: how many parts one GET may bring when this store is read.
  std::size_t parts_per_get() const;
  const std::string& store_name() const;
  std::size_t connections_opened() const;
  /// Shutdown past its deadline: see http::client::abort_all.
  void abort_requests();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace archie::store::s3
