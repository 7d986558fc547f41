#pragma once
// An S3 bucket (MinIO, RGW, AWS...) as the source of replication.
#include "store/s3/s3_client.hpp"
#include "store/versioning_cache.hpp"
#include "store/source.hpp"

namespace archie::store::s3 {

class s3_source final : public source {
 public:
  explicit s3_source(s3_client& client) : client_(client) {}
  async_result<object_info> head(const std::string& bucket, const std::string& key) override;
  async_result<object_info> read(const std::string& bucket, const std::string& key, std::span<std::byte> into,
                                 const range_read& range) override;
  async_result<std::string> copy_within(const std::string& bucket, const std::string& key, const std::string& to_bucket,
                                        const std::string& to_key, const object_info& meta,
                                        const config::write_options* write) override;
  std::uint64_t max_server_side_copy() const override { return 5ull << 30; }  // CopyObject's limit
  std::size_t parts_per_get() const override { return client_.parts_per_get(); }
  async_result<version_history> versions(const std::string& bucket, const std::string& key) override;
  async_result<std::string> versioning(const std::string& bucket) override;
  async_result<version_page> versions_page(const std::string& bucket, const std::string& prefix,
                                           const std::string& key_marker, const std::string& version_marker) override;
  async_result<object_info> head_version(const std::string& bucket, const std::string& key,
                                         const std::string& version_id) override;
  async_result<std::string> tagging(const std::string& bucket, const std::string& key,
                                    const std::string& version_id) override;
  const std::string& name() const override { return client_.store_name(); }

 private:
  s3_client& client_;
  versioning_cache versioning_;
};

}  // namespace archie::store::s3
