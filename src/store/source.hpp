#pragma once
// Where replicated objects are read from. The engine and the pipe see only this interface, so
// they can be tested with a fake, and a non-S3 source could be added without touching them.
#include "store/destination.hpp"
#include "store/object_version.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

namespace archie::store {

/// The rest of a read that goes on (range_read::rest): the object's next bytes, in order, from
/// the same answer. It holds a connection to the source until read to its end or dropped.
class body_stream {
 public:
  virtual ~body_stream() = default;
  /// The object offset of the next byte it gives.
  virtual std::uint64_t position() const = 0;
  /// The offset after the last byte it carries.
  virtual std::uint64_t end() const = 0;
  /// Reads exactly into.size() bytes (at most end() - position()). An error ends the stream:
  /// the reader asks again from position() with a new read.
  virtual async_result<done> read(std::span<std::byte> into, http::cut_group* cut) = 0;
};

/// One ranged read: exactly into.size() bytes from `offset`, only from the version `if_match`.
struct range_read {
  std::uint64_t offset = 0;
  std::string if_match;  ///< the ETag every part must come from (empty: any); a changed object fails (412)
  /// The version every part must come from (empty: the current one). Two versions
  /// can share an ETag (the same bytes written twice); only the ID names one for sure.
  std::string version_id;
  bool may_end_early = false;  ///< read up to into.size() bytes: the object may be shorter
  http::cut_group* cut = nullptr;  ///< the copy's requests, cut together when it is cancelled
  /// Set: the answer may go on past `into`, up to byte `rest_to` (exclusive; 0: the object's
  /// end), and *rest receives what is left of it, so that one GET feeds the next parts too.
  /// Left null when nothing is left or the store keeps no more reads open (a source keeps an
  /// eighth of its connections for other requests). The reader must take what goes on
  /// without delay (a server holding an answer for a reader that waits works for nothing):
  /// it asks only for what it has buffers for.
  std::shared_ptr<body_stream>* rest = nullptr;
  std::uint64_t rest_to = 0;
};

class source {
 public:
  virtual ~source() = default;
  /// Size, ETag and metadata of the current version; not_found when absent.
  virtual async_result<object_info> head(const std::string& bucket, const std::string& key) = 0;
  /// Reads into `into`; the returned info carries the ETag and the object's total size.
  virtual async_result<object_info> read(const std::string& bucket, const std::string& key, std::span<std::byte> into,
                                         const range_read& range) = 0;
  /// Server-side copy to another bucket of the same store, of exactly the version meta names
  /// (meta.version_id where the source has versions, and meta.etag), with meta's metadata (objects up to max_server_side_copy bytes).
  virtual async_result<std::string> copy_within(const std::string& bucket, const std::string& key,
                                                const std::string& to_bucket, const std::string& to_key,
                                                const object_info& meta, const config::write_options* write) = 0;
  virtual std::uint64_t max_server_side_copy() const = 0;
  /// How many parts one GET may bring (range_read::rest); 1: a ranged GET per part.
  virtual std::size_t parts_per_get() const { return 1; }
  /// Every version and delete marker of exactly `key`, newest first (versions = "all").
  virtual async_result<version_history> versions(const std::string& bucket, const std::string& key) = 0;
  /// The bucket's versioning status: "Enabled", "Suspended" or empty (never enabled). A
  /// history can be followed only while it is Enabled (suspended writes replace "null").
  virtual async_result<std::string> versioning(const std::string& bucket) = 0;
  /// One page of the versions of every key under `prefix` (a walk over version histories).
  virtual async_result<version_page> versions_page(const std::string& bucket, const std::string& prefix,
                                                   const std::string& key_marker,
                                                   const std::string& version_marker) = 0;
  /// Size, ETag and metadata of one version.
  virtual async_result<object_info> head_version(const std::string& bucket, const std::string& key,
                                                 const std::string& version_id) = 0;
  /// The tags of one version (the current one when version_id is empty) in canonical form
  /// (object_info::tagging); empty: none. Read only when a HEAD or GET said the object has
  /// some (tag_count > 0).
  virtual async_result<std::string> tagging(const std::string& bucket, const std::string& key,
                                            const std::string& version_id) = 0;
  virtual const std::string& name() const = 0;
};

}  // namespace archie::store
