#include "store/s3/s3_destination.hpp"

#include <algorithm>
#include <mutex>

namespace archie::store::s3 {
namespace {

constexpr std::uint64_t max_parts = 10'000;  // S3's limit per multipart upload

store_error too_many_parts(const std::string& store, const std::string& bucket, const std::string& key,
                           std::uint64_t size, std::size_t part_size) {
  return store_error{error_kind::permanent, store, "CreateMultipartUpload", bucket, key, 0, "TooManyParts",
                     std::to_string(size) + " bytes need more than 10,000 parts of " +
                         std::to_string(part_size >> 20) + " MiB: raise replication.part_size_mib",
                     ""};
}

class single_put final : public single_request_upload {
 public:
  single_put(s3_client& c, std::string bucket, std::string key, object_info meta, const config::write_options* write)
      : c_(c), bucket_(std::move(bucket)), key_(std::move(key)), meta_(std::move(meta)), write_(write) {}

 private:
  async_result<done> send(const part_body& body) override {
    auto r = co_await c_.put_object(bucket_, key_, body, meta_, write_);
    if (!r) co_return r.error();
    co_return done{};
  }

  s3_client& c_;
  std::string bucket_, key_;
  object_info meta_;
  const config::write_options* write_;  ///< owned by the config, which outlives every copy
};

class multipart final : public upload {
 public:
  multipart(s3_client& c, std::string bucket, std::string key, std::string upload_id, std::size_t parts)
      : c_(c), bucket_(std::move(bucket)), key_(std::move(key)), id_(std::move(upload_id)), parts_(parts) {}
  async_result<done> write_part(int number, std::uint64_t, const part_body& bytes) override {
    auto r = co_await c_.upload_part(bucket_, key_, id_, number, bytes);
    if (!r) co_return r.error();
    parts_[static_cast<std::size_t>(number - 1)] = {number, r.value()};
    co_return done{};
  }
  async_result<done> finish() override {
    // The replica's ETag is not needed here (the convergence check reads what it must).
    constexpr bool etag_wanted = false;
    auto r = co_await c_.complete_multipart_upload(bucket_, key_, id_, parts_, etag_wanted);
    if (!r) co_return r.error();
    completed_ = true;
    co_return done{};
  }
  boost::asio::awaitable<void> abort() override {
    if (!completed_) co_await c_.abort_multipart_upload(bucket_, key_, id_);
  }

 private:
  s3_client& c_;
  std::string bucket_, key_, id_;
  std::vector<completed_part> parts_;
  bool completed_ = false;
};

}  // namespace

async_result<std::optional<object_info>> s3_destination::replica_info(const std::string& bucket,
                                                                    const std::string& key) {
  const std::string current;
  co_return co_await replica_version_info(bucket, key, current);
}

async_result<std::optional<object_info>> s3_destination::replica_version_info(const std::string& bucket,
                                                                            const std::string& key,
                                                                            const std::string& version_id) {
  auto head = co_await client_.head_object(bucket, key, version_id);
  auto found = absent_if_not_found(std::move(head));
  if (!found || !found.value() || found.value()->tag_count <= 0) co_return found;
  // Tagged: compare the tags themselves (a count alone misses a changed value).
  auto tags = co_await client_.get_object_tagging(bucket, key, found.value()->version_id);
  if (!tags) {
    // Not readable here (no s3:GetObjectTagging, or no tagging at all): unknown, not an
    // error; a destination with tags = "ignore" needs none.
    if (tags.error().kind != error_kind::permission && tags.error().kind != error_kind::permanent) co_return tags.error();
    found.value()->tag_count = -1;
    co_return found;
  }
  found.value()->tagging = std::move(tags.value());
  co_return found;
}

async_result<done> s3_destination::set_object_lock(const std::string& bucket, const std::string& key,
                                                   const object_info& replica, const object_info& wanted) {
  co_return co_await client_.put_object_lock(bucket, key, replica, wanted);
}

async_result<done> s3_destination::set_tagging(const std::string& bucket, const std::string& key,
                                               const object_info& replica, const std::string& tagging) {
  co_return co_await client_.put_object_tagging(bucket, key, replica.version_id, tagging);
}

async_result<std::unique_ptr<upload>> s3_destination::begin(const std::string& bucket, const std::string& key,
                                                            const object_info& meta, std::uint64_t size,
                                                            std::size_t part_size, const upload_options& options) {
  http::cut_group* cut = options.cut;
  if (size <= part_size)
    co_return std::unique_ptr<upload>(std::make_unique<single_put>(client_, bucket, key, meta, options.write));
  if ((size + part_size - 1) / part_size > max_parts)
    co_return too_many_parts(client_.store_name(), bucket, key, size, part_size);
  // A worker killed mid-copy leaves its multipart upload open (parts keep their space until
  // aborted). The replica key is ours, so uploads still open for exactly this key are from
  // an earlier attempt: abort them before starting again. A concurrent duplicate delivery
  // that loses its upload this way fails, is nak'ed and finds the object done next time.
  // (A create cut after it was sent may leave one more such upload: the next attempt's
  // listing finds it.)
  // A first delivery has had no earlier attempt to leave one: it skips the listing.
  if (options.earlier_attempt_possible) {
    auto open_uploads = co_await client_.list_multipart_uploads(bucket, key, cut);
    if (open_uploads) {
      for (const auto& u : open_uploads.value())
        if (u.key == key) co_await client_.abort_multipart_upload(bucket, key, u.upload_id);
    }
  }
  auto id = co_await client_.create_multipart_upload(bucket, key, meta, cut, options.write);
  if (!id) co_return id.error();
  std::size_t parts = static_cast<std::size_t>((size + part_size - 1) / part_size);
  co_return std::unique_ptr<upload>(std::make_unique<multipart>(client_, bucket, key, id.value(), parts));
}

async_result<done> s3_destination::remove(const std::string& bucket, const std::string& key) {
  auto r = co_await client_.delete_object(bucket, key);
  if (!r && r.error().kind != error_kind::not_found) co_return r.error();
  co_return done{};
}

async_result<bool> s3_destination::replace_metadata(const std::string& bucket, const std::string& key,
                                                   const object_info& replica, const object_info& wanted,
                                                   const config::write_options* write) {
  constexpr std::uint64_t max_copy_object = 5ull << 30;  // S3's limit for one CopyObject
  if (replica.size > max_copy_object) co_return false;
  // CopyObject onto itself with REPLACE, of exactly the replica seen (its ETag and version):
  // the server keeps the bytes and takes the new metadata (and, as for any write, the
  // destination's own storage class, encryption and ACL).
  object_info replace = wanted;
  replace.etag = replica.etag;
  replace.version_id = replica.version_id;
  auto r = co_await client_.copy_object(bucket, key, bucket, key, &replace, write);
  if (!r) co_return r.error();
  co_return true;
}

async_result<done> s3_destination::check_bucket(const std::string& bucket) {
  co_return co_await client_.head_bucket(bucket);
}

async_result<version_history> s3_destination::history(const std::string& bucket, const std::string& key) {
  // Without versioning every copy would replace the last one: the history would never
  // level, and each event would copy every version again.
  std::optional<std::string> status = versioning_.get(bucket);
  if (!status) {
    auto asked = co_await client_.bucket_versioning(bucket);
    if (!asked) co_return asked.error();
    status = asked.value();
    versioning_.put(bucket, *status);
  }
  if (*status != "Enabled")
    co_return store_error{error_kind::permanent, name(), "GetBucketVersioning", bucket, key, 0, "VersioningNotEnabled",
                          "versions = \"all\" needs versioning enabled on this bucket (its status: " +
                              (status->empty() ? std::string("never enabled") : *status) + ")",
                          ""};
  auto listed = co_await client_.list_object_versions(bucket, key);
  if (!listed) co_return listed.error();
  version_history out = std::move(listed.value());
  // The listing has no user metadata: a HEAD per object version reads which source version
  // it copies. A version gone meanwhile (deleted by someone) simply is not there.
  constexpr std::size_t max_remembered = 100'000;
  for (auto& v : out) {
    if (v.delete_marker) continue;
    const std::string id = bucket + '\n' + key + '\n' + v.version_id;
    {
      std::lock_guard lock(versioned_mutex_);
      if (auto it = source_version_of_.find(id); it != source_version_of_.end()) {
        v.source_version_id = it->second;
        continue;
      }
    }
    auto head = co_await client_.head_object(bucket, key, v.version_id);
    if (!head) {
      if (head.error().kind == error_kind::not_found) continue;
      co_return head.error();
    }
    if (const std::string* marker = head->metadata(source_version_metadata)) v.source_version_id = *marker;
    std::lock_guard lock(versioned_mutex_);
    if (source_version_of_.size() >= max_remembered) source_version_of_.erase(source_version_of_.begin());
    source_version_of_.emplace(id, v.source_version_id);
  }
  co_return out;
}

async_result<done> s3_destination::remove_version(const std::string& bucket, const std::string& key,
                                                  const std::string& version_id) {
  co_return co_await client_.delete_object_version(bucket, key, version_id);
}

}  // namespace archie::store::s3
