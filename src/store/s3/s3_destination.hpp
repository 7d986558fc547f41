#pragma once
// S3 as a replication destination: one PUT for objects up to a part, multipart above
// (aborted on any failure), source ETag recorded in user metadata.
#include "store/destination.hpp"
#include "store/s3/s3_client.hpp"
#include "store/versioning_cache.hpp"

#include <map>
#include <mutex>
#include <set>
#include <string>

namespace archie::store::s3 {

class s3_destination final : public destination {
 public:
  explicit s3_destination(s3_client& client) : client_(client) {}
  async_result<std::optional<object_info>> replica_info(const std::string& bucket, const std::string& key) override;
  async_result<std::optional<object_info>> replica_version_info(const std::string& bucket, const std::string& key,
                                                                const std::string& version_id) override;
  metadata_kept keeps() const override { return metadata_kept::all; }
  async_result<std::unique_ptr<upload>> begin(const std::string& bucket, const std::string& key,
                                              const object_info& meta, std::uint64_t size,
                                              std::size_t part_size, const upload_options& options) override;
  async_result<done> remove(const std::string& bucket, const std::string& key) override;
  async_result<done> set_tagging(const std::string& bucket, const std::string& key, const object_info& replica,
                                 const std::string& tagging) override;
  async_result<done> set_object_lock(const std::string& bucket, const std::string& key, const object_info& replica,
                                     const object_info& wanted) override;
  async_result<version_history> history(const std::string& bucket, const std::string& key) override;
  async_result<done> remove_version(const std::string& bucket, const std::string& key,
                                    const std::string& version_id) override;
  async_result<bool> replace_metadata(const std::string& bucket, const std::string& key, const object_info& replica,
                                      const object_info& wanted, const config::write_options* write) override;
  async_result<done> check_bucket(const std::string& bucket) override;
  const std::string& name() const override { return client_.store_name(); }
  s3_client& client() { return client_; }

 private:
  s3_client& client_;
  versioning_cache versioning_;
  std::mutex versioned_mutex_;  ///< guards source_version_of_
  /// "bucket\nkey\nversion" -> the source version it copies: a version's metadata never
  /// changes, so each is read (HEAD) once. Bounded: one entry leaves for each that comes in.
  std::map<std::string, std::string> source_version_of_;
};

}  // namespace archie::store::s3
