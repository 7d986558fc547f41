#include "store/destination.hpp"

#include <algorithm>

namespace archie::store {
namespace {

// User metadata as a sorted list without archie's marker: order is not meaningful.
std::vector<std::pair<std::string, std::string>> user_metadata_of(const object_info& o) {
  auto out = o.user_metadata;
  std::erase_if(out, [](const auto& kv) { return kv.first == source_etag_metadata; });
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

bool replica_holds_version(const object_info& replica, const object_info& wanted, metadata_kept kept) {
  const std::string* marker = replica.metadata(source_etag_metadata);
  if (!marker || *marker != wanted.etag) return false;
  // A replica changed in place keeps its marker (a local file's extended attribute survives a
  // rewrite); its size still tells it is not the version the marker names.
  if (replica.size != wanted.size) return false;
  // A store gives an object without a content type its own default: compare only a real one.
  if (!wanted.content_type.empty() && replica.content_type != wanted.content_type) return false;
  if (kept == metadata_kept::content_type) return true;
  return replica.content_encoding == wanted.content_encoding &&
         replica.content_disposition == wanted.content_disposition &&
         replica.cache_control == wanted.cache_control && replica.content_language == wanted.content_language &&
         replica.expires == wanted.expires && replica.website_redirect == wanted.website_redirect &&
         user_metadata_of(replica) == user_metadata_of(wanted);
}

bool replica_has_bytes_of(const object_info& replica, const object_info& wanted) {
  const std::string* marker = replica.metadata(source_etag_metadata);
  return marker && *marker == wanted.etag && replica.size == wanted.size;
}

object_info kept_by(const object_info& meta, const config::write_options* write) {
  object_info kept = meta;
  if (!write || !write->copy_object_lock) {
    kept.lock_mode.clear();
    kept.lock_retain_until.clear();
    kept.legal_hold.clear();
  }
  if (write && !write->copy_tags) kept.tagging.clear();
  return kept;
}

bool same_object_lock(const object_info& a, const object_info& b) {
  // A legal hold that is OFF is the same as none.
  auto hold = [](const std::string& h) { return h == "ON"; };
  return a.lock_mode == b.lock_mode && a.lock_retain_until == b.lock_retain_until && hold(a.legal_hold) == hold(b.legal_hold);
}

bool replica_is_current(const object_info& replica, const object_info& wanted, metadata_kept kept) {
  return replica_holds_version(replica, wanted, kept) && replica.tagging == wanted.tagging &&
         same_object_lock(replica, wanted);
}

async_result<done> destination::set_object_lock(const std::string& bucket, const std::string& key, const object_info&,
                                                const object_info&) {
  co_return store_error{error_kind::permanent, name(), "PutObjectRetention", bucket, key, 0, "ObjectLockNotSupported",
                        "this destination cannot hold object lock settings (set object_lock = \"ignore\")", ""};
}

async_result<done> destination::set_tagging(const std::string& bucket, const std::string& key, const object_info&,
                                            const std::string&) {
  co_return store_error{error_kind::permanent, name(), "PutObjectTagging", bucket, key, 0, "TagsNotSupported",
                        "this destination cannot hold object tags", ""};
}

async_result<bool> destination::replace_metadata(const std::string&, const std::string&, const object_info&,
                                                 const object_info&, const config::write_options*) {
  co_return false;
}

async_result<version_history> destination::history(const std::string& bucket, const std::string& key) {
  co_return store_error{error_kind::permanent, name(), "ListObjectVersions", bucket, key, 0, "VersionsNotSupported",
                        "this destination holds the current version only (set versions = \"current\")", ""};
}

async_result<std::optional<object_info>> destination::replica_version_info(const std::string& bucket,
                                                                          const std::string& key, const std::string&) {
  co_return store_error{error_kind::permanent, name(), "HeadObject", bucket, key, 0, "VersionsNotSupported",
                        "this destination holds the current version only (set versions = \"current\")", ""};
}

async_result<done> destination::remove_version(const std::string& bucket, const std::string& key, const std::string&) {
  co_return store_error{error_kind::permanent, name(), "DeleteObjectVersion", bucket, key, 0, "VersionsNotSupported",
                        "this destination holds the current version only (set versions = \"current\")", ""};
}

async_result<std::string> destination::recorded_source_etag(const std::string& bucket, const std::string& key) {
  auto r = co_await replica_info(bucket, key);
  if (!r) co_return r.error();
  if (!r.value()) co_return std::string();
  const std::string* v = r.value()->metadata(source_etag_metadata);
  co_return v ? *v : std::string();
}

async_result<done> single_request_upload::write_part(int, std::uint64_t, const part_body& bytes) {
  auto r = co_await send(bytes);
  if (!r) co_return r.error();
  written_ = true;
  co_return done{};
}

async_result<done> single_request_upload::finish() {
  if (written_) co_return done{};
  part_body empty{std::span<const std::byte>()};
  auto r = co_await send(empty);
  if (!r) co_return r.error();
  written_ = true;
  co_return done{};
}

boost::asio::awaitable<void> single_request_upload::abort() { co_return; }

}  // namespace archie::store
