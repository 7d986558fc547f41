#pragma once
// Google Cloud Storage as a replication destination. Objects up to one part go up in one
// resumable session started and finished by a single PUT (see gcs_client.hpp); larger ones
// in a resumable session started by begin(), one chunk per part, in order.
//
// The pipe hands parts over in any order from parallel workers, but a session takes bytes
// only in order. So write_part(N) waits for part N-1 to be sent (an ordered hand-off: each
// waiting part sleeps on its own timer, which the part before it cancels when done); it holds
// nothing but the pipe's buffer it was given. The pipe takes part numbers in order and its
// buffer pool is FIFO, so the lowest unsent part always has a buffer: no deadlock. A part
// that waits `part_wait_timeout` while the upload makes no progress at all (its predecessor's
// source read failed, say, and will never come) fails the upload, retryably.
//
// finish() makes the object visible: the last part's aligned bytes go up as an ordinary
// chunk and its ragged tail (< 256 KiB, copied) is kept for finish(), which sends it with
// Content-Range .../total and X-Goog-Hash crc32c of the whole object (computed part by part
// as they are sent) so that the server verifies it. abort() cancels the session; sessions
// never finished or cancelled (a killed worker) cost nothing and expire after a week.
// The source ETag is recorded in custom metadata archie-source-etag.
//
// versions = "all" needs object versioning on the bucket: each copy is a generation, and a
// delete makes the live generation noncurrent. GCS has no delete markers, so a source
// history's markers between versions are not kept; a source whose latest entry is a delete
// marker is mirrored by having no live generation (holds_delete_markers).
#include "store/destination.hpp"
#include "store/gcs/gcs_client.hpp"
#include "store/versioning_cache.hpp"

#include <chrono>

namespace archie::store::gcs {

struct destination_options {
  /// How long a part waits for its predecessor while nothing at all moves in the upload.
  std::chrono::milliseconds part_wait_timeout{std::chrono::minutes(15)};
};

class gcs_destination final : public destination {
 public:
  explicit gcs_destination(gcs_client& client) : client_(client) {}
  gcs_destination(gcs_client& client, const destination_options& opts) : client_(client), opts_(opts) {}
  async_result<std::optional<object_info>> replica_info(const std::string& bucket, const std::string& key) override;
  async_result<std::optional<object_info>> replica_version_info(const std::string& bucket, const std::string& key,
                                                                const std::string& version_id) override;
  async_result<version_history> history(const std::string& bucket, const std::string& key) override;
  bool holds_delete_markers() const override { return false; }
  async_result<done> remove_version(const std::string& bucket, const std::string& key,
                                    const std::string& version_id) override;
  metadata_kept keeps() const override { return metadata_kept::all; }
  async_result<std::unique_ptr<upload>> begin(const std::string& bucket, const std::string& key,
                                              const object_info& meta, std::uint64_t size,
                                              std::size_t part_size, const upload_options& options) override;
  async_result<done> remove(const std::string& bucket, const std::string& key) override;
  async_result<done> set_tagging(const std::string& bucket, const std::string& key, const object_info& replica,
                                 const std::string& tagging) override;
  async_result<done> check_bucket(const std::string& bucket) override;
  const std::string& name() const override { return client_.store_name(); }
  gcs_client& client() { return client_; }

 private:
  gcs_client& client_;
  destination_options opts_;
  versioning_cache versioning_;
};

}  // namespace archie::store::gcs
