#pragma once
// A local directory as a replication destination: <root>/<bucket>/<key>. Each object is
// written to a temp file beside its target, fsync'ed and renamed, so readers never see a
// partial file. Keys that could escape the root ("..", absolute, empty segments) are refused.
#include "config/config.hpp"
#include "http/send_budget.hpp"
#include "store/destination.hpp"

#include <boost/asio/thread_pool.hpp>

#include <optional>

namespace archie::store::fs {

/// The extended attribute holding source_etag_metadata on a replica file.
inline constexpr const char* source_etag_xattr = "user.archie-source-etag";
/// The object's tags, canonical form ("k=v&k2=v2", as S3's x-amz-tagging); absent: none.
inline constexpr const char* tags_xattr = "user.archie-tags";

/// The path for bucket/key under root, or nullopt when the key cannot be stored safely.
std::optional<std::string> safe_path(const std::string& root, const std::string& bucket, const std::string& key);

class fs_destination final : public destination {
 public:
  /// `budget` (optional) paces the bytes written (a fleet max_bandwidth).
  fs_destination(std::string name, const config::fs_store_config& cfg, boost::asio::thread_pool& blocking,
                 std::shared_ptr<http::send_budget> budget = nullptr);
  async_result<std::optional<object_info>> replica_info(const std::string& bucket, const std::string& key) override;
  metadata_kept keeps() const override { return metadata_kept::content_type; }
  async_result<std::unique_ptr<upload>> begin(const std::string& bucket, const std::string& key,
                                              const object_info& meta, std::uint64_t size,
                                              std::size_t part_size, const upload_options& options) override;
  async_result<done> remove(const std::string& bucket, const std::string& key) override;
  async_result<done> set_tagging(const std::string& bucket, const std::string& key, const object_info& replica,
                                 const std::string& tagging) override;
  async_result<done> check_bucket(const std::string& bucket) override;
  const std::string& name() const override { return name_; }
  /// Reads exactly into.size() bytes of the replica from `offset` (content comparison);
  /// not_found when absent, permanent when the file is shorter.
  async_result<done> read(const std::string& bucket, const std::string& key, std::span<std::byte> into,
                          std::uint64_t offset);

 private:
  std::string name_;
  config::fs_store_config cfg_;
  boost::asio::thread_pool& blocking_;
  std::shared_ptr<http::send_budget> budget_;
};

}  // namespace archie::store::fs
