#pragma once
// Where a replicated object is written. One interface for every store type so the pipe can
// fan one set of part buffers out to S3, GCS and local directories alike.
#include "config/config.hpp"
#include "http/cut_group.hpp"
#include "store/object_info.hpp"
#include "store/object_version.hpp"
#include "store/part_body.hpp"
#include "store/store_error.hpp"

#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>

namespace archie::store {

/// Metadata key (x-amz-meta-/x-goog-meta-/xattr) recording the source ETag a copy came from:
/// a redelivered event whose destination already holds that ETag is acked without copying.
inline constexpr const char* source_etag_metadata = "archie-source-etag";

/// How one upload is made, beyond its key, metadata and size.
struct upload_options {
  http::cut_group* cut = nullptr;  ///< the copy's requests end with this group (null: none)
  /// An earlier attempt at this key may have left an open multipart upload (a redelivery):
  /// look for one and abort it first. A first delivery skips that listing.
  bool earlier_attempt_possible = true;
  const config::write_options* write = nullptr;  ///< storage class, encryption, ACL (null: the bucket's defaults)
};

/// One object being written. Parts arrive in any order, each exactly once; finish() makes
/// the object visible atomically; abort() leaves nothing behind.
class upload {
 public:
  virtual ~upload() = default;
  virtual async_result<done> write_part(int number, std::uint64_t offset, const part_body& bytes) = 0;
  virtual async_result<done> finish() = 0;
  virtual boost::asio::awaitable<void> abort() = 0;
  /// The copy is being abandoned (the source failed): parts still waiting for their turn
  /// must return at once. Synchronous, safe while other parts are in flight.
  virtual void stop_waiting() {}
};

/// An object that fits in one part goes in one request: write_part sends it, finish sends an
/// empty body when no part came (a 0-byte object). A single request leaves nothing to abort.
class single_request_upload : public upload {
 public:
  async_result<done> write_part(int number, std::uint64_t offset, const part_body& bytes) final;
  async_result<done> finish() final;
  boost::asio::awaitable<void> abort() final;

 protected:
  /// Stores the whole object.
  virtual async_result<done> send(const part_body& body) = 0;

 private:
  bool written_ = false;
};

/// Which of an object's metadata a destination stores, and so can be compared with the source.
enum class metadata_kept {
  content_type,  ///< the marker and the content type (local directories: extended attributes)
  all,           ///< content headers and user metadata (S3, GCS)
};

/// True when `replica` (what a destination holds) is the version `wanted` describes: the
/// marker names wanted's source ETag, the sizes are equal and the metadata the destination
/// keeps is the same. The ETag alone is not enough: one content can be put again with other
/// metadata (every empty object has the same ETag). Tags are not compared here.
bool replica_holds_version(const object_info& replica, const object_info& wanted, metadata_kept kept);
/// True when `replica` holds the bytes of the version `wanted` describes (archie's marker
/// names its ETag and the sizes agree), whatever its metadata.
bool replica_has_bytes_of(const object_info& replica, const object_info& wanted);
/// What a destination with these write options holds of `meta`: without the object lock
/// where it does not copy it (null options: none), without tags where it ignores them.
object_info kept_by(const object_info& meta, const config::write_options* write);

/// Same retention (mode and date) and legal hold.
bool same_object_lock(const object_info& a, const object_info& b);
/// The replica holds the version, the same tags and the same object lock: nothing to write.
bool replica_is_current(const object_info& replica, const object_info& wanted, metadata_kept kept);

/// A lookup whose not-found answer means "absent": the value, nullopt, or the real error.
template <class T>
result<std::optional<T>> absent_if_not_found(result<T> r) {
  if (r) return std::optional<T>(std::move(r.value()));
  if (r.error().kind == error_kind::not_found) return std::optional<T>();
  return r.error();
}

class destination {
 public:
  virtual ~destination() = default;
  /// What the destination holds for `key` (the metadata it keeps, archie's marker among the
  /// user metadata); nullopt when absent.
  virtual async_result<std::optional<object_info>> replica_info(const std::string& bucket, const std::string& key) = 0;
  /// What the destination holds of one version of `key` (versions = "all"): as replica_info,
  /// with its tags; nullopt when that version is gone. Stores without versions refuse.
  virtual async_result<std::optional<object_info>> replica_version_info(const std::string& bucket,
                                                                        const std::string& key,
                                                                        const std::string& version_id);
  virtual metadata_kept keeps() const = 0;
  /// The source ETag recorded on an existing copy; empty when the object is absent or was not
  /// written by archie.
  async_result<std::string> recorded_source_etag(const std::string& bucket, const std::string& key);
  /// Starts writing `key`; meta already carries source_etag_metadata. `size` and `part_size`
  /// decide single-request vs multipart.
  virtual async_result<std::unique_ptr<upload>> begin(const std::string& bucket, const std::string& key,
                                                      const object_info& meta, std::uint64_t size,
                                                      std::size_t part_size, const upload_options& options) = 0;
  /// Deletes `key`; not-found counts as done.
  virtual async_result<done> remove(const std::string& bucket, const std::string& key) = 0;
  /// Replaces the tags of the object `replica` describes (as replica_info returned it) with
  /// `tagging` (canonical form, empty: none), without writing its bytes. A tag change at the
  /// source costs this, not a copy.
  virtual async_result<done> set_tagging(const std::string& bucket, const std::string& key, const object_info& replica,
                                         const std::string& tagging);
  /// Gives the object `replica` describes the retention and legal hold of `wanted`, without
  /// writing its bytes (a retention or legal-hold change at the source).
  virtual async_result<done> set_object_lock(const std::string& bucket, const std::string& key,
                                             const object_info& replica, const object_info& wanted);
  /// versions = "all": the key's history, newest first, each version with the source version
  /// it copies (its marker). Stores without versions refuse for good (the default).
  virtual async_result<version_history> history(const std::string& bucket, const std::string& key);
  /// Whether the history can hold delete markers between versions (S3). GCS cannot: a
  /// deleted object is a noncurrent generation with no marker, so only the last delete (no
  /// live generation) shows, as a delete marker on top of history() with an empty ID.
  virtual bool holds_delete_markers() const { return true; }
  /// Deletes one version or delete marker for good (versions = "all").
  virtual async_result<done> remove_version(const std::string& bucket, const std::string& key,
                                            const std::string& version_id);
  /// Gives the object `replica` describes the content headers and user metadata of `wanted`
  /// (archie's marker included) without sending its bytes again: a metadata-only change at
  /// the source. false: this destination cannot (the caller writes the whole object).
  virtual async_result<bool> replace_metadata(const std::string& bucket, const std::string& key,
                                              const object_info& replica, const object_info& wanted,
                                              const config::write_options* write);
  /// Cheap reachability probe for /ready.
  virtual async_result<done> check_bucket(const std::string& bucket) = 0;
  virtual const std::string& name() const = 0;
};

}  // namespace archie::store
