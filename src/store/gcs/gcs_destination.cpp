#include "store/gcs/gcs_destination.hpp"

#include "log/logger.hpp"
#include "store/checksum.hpp"
#include "store/gcs/gcs_requests.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <charconv>
#include <map>

namespace archie::store::gcs {
namespace asio = boost::asio;

namespace {

// Outside any coroutine: GCC 12 rule 3 (async/gcc12_coroutines.hpp).
store_error upload_error(const std::string& store, const char* operation, const std::string& bucket,
                         const std::string& key, error_kind kind, const char* code, std::string message) {
  return store_error{kind, store, operation, bucket, key, 0, code, std::move(message), ""};
}

// upload_object cancels its own session when it fails.
class single_upload final : public single_request_upload {
 public:
  single_upload(gcs_client& c, std::string bucket, std::string key, object_info meta, const config::write_options* write)
      : c_(c), bucket_(std::move(bucket)), key_(std::move(key)), meta_(std::move(meta)), write_(write) {}

 private:
  async_result<done> send(const part_body& body) override {
    auto bytes = body.bytes();
    auto r = co_await c_.upload_object(bucket_, key_, bytes, meta_, pre_, write_);
    if (!r) co_return r.error();
    co_return done{};
  }

  gcs_client& c_;
  std::string bucket_, key_;
  object_info meta_;
  preconditions pre_;
  const config::write_options* write_;  ///< owned by the config, which outlives every copy
};

class resumable_upload final : public upload {
 public:
  resumable_upload(gcs_client& c, resumable_session session, std::uint64_t size, std::chrono::milliseconds wait_limit)
      : c_(c), s_(std::move(session)), size_(size), wait_limit_(wait_limit) {}

  async_result<done> write_part(int number, std::uint64_t offset, const part_body& body) override {
    const std::span<const std::byte> bytes = body.bytes();
    if (failed_) co_return *failed_;
    if (number < next_part_ || waiters_.count(number) || (number == next_part_ && sending_))
      co_return error_for_duplicate(number);
    if (number != next_part_) {
      // Wait for our turn: the part before us cancels our timer once it is sent.
      auto ex = co_await asio::this_coro::executor;
      asio::steady_timer turn(ex);
      waiters_[number] = &turn;
      std::uint64_t seen = progress_;
      while (!failed_ && number != next_part_) {
        turn.expires_after(wait_limit_);
        auto [ec] = co_await turn.async_wait(asio::as_tuple(asio::use_awaitable));
        if (ec || failed_ || number == next_part_) continue;
        if (progress_ == seen && !sending_) {
          fail(error_for_stall(number));
          break;
        }
        seen = progress_;
      }
      waiters_.erase(number);
      if (failed_) co_return *failed_;
    }

    if (offset != next_offset_ || offset + bytes.size() > size_) {
      fail(error_for_misplaced(number, offset, bytes.size()));
      co_return *failed_;
    }
    const bool last = offset + bytes.size() == size_;
    if (!last && bytes.size() % chunk_quantum) {
      fail(error_for_misplaced(number, offset, bytes.size()));
      co_return *failed_;
    }
    crc_ = crc32c(bytes, crc_);
    // The last part's ragged tail waits for finish(), so that only finish() finalizes.
    const std::size_t keep = last ? bytes.size() % chunk_quantum : 0;
    auto send = bytes.first(bytes.size() - keep);
    if (!send.empty()) {
      upload_hashes none;
      sending_ = true;
      auto r = co_await c_.upload_chunk(s_, offset, send, false, none, body.cut());
      sending_ = false;
      if (!r) {
        fail(r.error());
        co_return r.error();
      }
    }
    if (keep) tail_.assign(bytes.end() - static_cast<std::ptrdiff_t>(keep), bytes.end());
    next_offset_ += bytes.size();
    ++next_part_;
    ++progress_;
    if (auto it = waiters_.find(next_part_); it != waiters_.end()) it->second->cancel();  // hand off
    co_return done{};
  }

  async_result<done> finish() override {
    if (failed_) co_return *failed_;
    if (next_offset_ != size_) co_return error_for_incomplete();
    upload_hashes hashes;
    hashes.crc32c = crc32c_base64(crc_);
    std::span<const std::byte> tail(tail_);
    auto r = co_await c_.upload_chunk(s_, size_ - tail_.size(), tail, true, hashes);
    if (!r) {
      fail(r.error());
      co_return r.error();
    }
    finished_ = true;
    tail_.clear();
    tail_.shrink_to_fit();
    if (!s_.result || s_.result->info.size != size_ ||
        (!s_.result->crc32c_base64.empty() && s_.result->crc32c_base64 != hashes.crc32c)) {
      // The server should have refused this itself (X-Goog-Hash): take the object back.
      auto e = error_for_mismatch(hashes.crc32c);
      if (s_.result) {
        preconditions same;
        same.if_generation_match = s_.result->generation;
        auto removed = co_await c_.delete_object(s_.bucket, s_.key, same);
        (void)removed;
      }
      co_return e;
    }
    co_return done{};
  }

  void stop_waiting() override {
    if (!failed_) fail(error_for_abort());  // wakes any part still waiting for its turn
  }

  asio::awaitable<void> abort() override {
    if (!failed_) fail(error_for_abort());  // wakes any part still waiting for its turn
    if (finished_ || cancelled_) co_return;
    cancelled_ = true;
    auto r = co_await c_.cancel_resumable_upload(s_);
    if (!r)
      log::debug("GCS upload session not cancelled (it expires on its own)",
                 {{"store", c_.store_name()}, {"bucket", s_.bucket}, {"key", s_.key}, {"error", r.error().describe()}});
  }

 private:
  void fail(store_error e) {
    if (!failed_) failed_ = std::move(e);
    for (auto& [n, timer] : waiters_) timer->cancel();
  }

  store_error make(error_kind kind, const char* code, std::string message) const {
    return upload_error(c_.store_name(), "UploadChunk", s_.bucket, s_.key, kind, code, std::move(message));
  }
  store_error error_for_duplicate(int number) const {
    return make(error_kind::permanent, "DuplicatePart", "part " + std::to_string(number) + " was written twice");
  }
  store_error error_for_stall(int number) const {
    return make(error_kind::retryable, "PartNeverArrived",
                "part " + std::to_string(number) + " waited " + std::to_string(wait_limit_.count() / 1000) +
                    " s for part " + std::to_string(next_part_) + ", which never came");
  }
  store_error error_for_misplaced(int number, std::uint64_t offset, std::size_t len) const {
    return make(error_kind::permanent, "BadPart",
                "part " + std::to_string(number) + " at offset " + std::to_string(offset) + " (" +
                    std::to_string(len) + " bytes) does not continue the upload at " + std::to_string(next_offset_) +
                    " in 256 KiB multiples (object " + std::to_string(size_) + " bytes)");
  }
  store_error error_for_incomplete() const {
    return make(error_kind::permanent, "IncompleteUpload",
                "finish after " + std::to_string(next_offset_) + " of " + std::to_string(size_) + " bytes");
  }
  store_error error_for_mismatch(const std::string& crc) const {
    return make(error_kind::retryable, "ChecksumMismatch",
                "the finished object is not what was sent (crc32c " + crc + ", " + std::to_string(size_) + " bytes)");
  }
  store_error error_for_abort() const { return make(error_kind::permanent, "Aborted", "upload aborted"); }

  gcs_client& c_;
  resumable_session s_;
  std::uint64_t size_;
  std::chrono::milliseconds wait_limit_;
  int next_part_ = 1;
  std::uint64_t next_offset_ = 0;  ///< bytes of the parts taken in order so far (tail included)
  std::uint32_t crc_ = 0;          ///< CRC32C of those bytes
  std::vector<std::byte> tail_;
  std::map<int, asio::steady_timer*> waiters_;  ///< part number -> its turn timer (in its frame)
  std::uint64_t progress_ = 0;
  bool sending_ = false;
  std::optional<store_error> failed_;
  bool finished_ = false;
  bool cancelled_ = false;
};

store_error versioning_not_enabled(const std::string& store, const std::string& bucket, const std::string& key) {
  return upload_error(store, "GetBucket", bucket, key, error_kind::permanent, "VersioningNotEnabled",
                      "versions = \"all\" needs object versioning enabled on this bucket "
                      "(gcloud storage buckets update gs://BUCKET --versioning)");
}

// A generation number as archie's version IDs carry it; nullopt when the text is not one.
std::optional<std::int64_t> parse_generation(const std::string& id) {
  std::int64_t g = 0;
  auto [end, ec] = std::from_chars(id.data(), id.data() + id.size(), g);
  if (id.empty() || ec != std::errc() || end != id.data() + id.size() || g <= 0) return std::nullopt;
  return g;
}

store_error bad_part_size(const std::string& store, const std::string& bucket, const std::string& key,
                          std::size_t part_size) {
  return upload_error(store, "StartResumableUpload", bucket, key, error_kind::permanent, "BadPartSize",
                      "part size " + std::to_string(part_size) + " is not a multiple of 256 KiB");
}

}  // namespace

async_result<std::optional<object_info>> gcs_destination::replica_info(const std::string& bucket,
                                                                     const std::string& key) {
  auto r = co_await client_.get_object_metadata(bucket, key);
  if (!r) co_return absent_if_not_found(result<object_info>(r.error()));
  object_info info = std::move(r.value().info);
  requests::lift_archie_metadata(info);  // tags and S3-only headers are not user metadata
  co_return std::optional<object_info>(std::move(info));
}

async_result<std::optional<object_info>> gcs_destination::replica_version_info(const std::string& bucket,
                                                                             const std::string& key,
                                                                             const std::string& version_id) {
  auto generation = parse_generation(version_id);
  if (!generation) co_return std::optional<object_info>();  // not a generation of ours: gone
  auto r = co_await client_.get_object_metadata(bucket, key, *generation);
  if (!r) co_return absent_if_not_found(result<object_info>(r.error()));
  object_info info = std::move(r.value().info);
  requests::lift_archie_metadata(info);
  co_return std::optional<object_info>(std::move(info));
}

async_result<version_history> gcs_destination::history(const std::string& bucket, const std::string& key) {
  // Without versioning every copy would replace the last one: the history would never
  // level, and each event would copy every version again.
  std::optional<std::string> status = versioning_.get(bucket);
  if (!status) {
    auto asked = co_await client_.bucket_versioning(bucket);
    if (!asked) co_return asked.error();
    status = asked.value() ? "Enabled" : "";
    versioning_.put(bucket, *status);
  }
  if (status->empty()) co_return versioning_not_enabled(name(), bucket, key);
  auto listed = co_await client_.list_generations(bucket, key);
  if (!listed) co_return listed.error();
  // The listing carries each generation's custom metadata: no read per version, unlike S3.
  version_history out;
  if (listed->empty() || !listed->front().live) {
    object_version deleted;  // see holds_delete_markers(): no live generation
    deleted.delete_marker = deleted.latest = true;
    out.push_back(std::move(deleted));
  }
  for (auto& g : listed.value()) {
    object_version v;
    v.version_id = std::to_string(g.meta.generation);
    v.latest = g.live;
    v.etag = g.meta.info.etag;
    v.size = g.meta.info.size;
    if (const std::string* marker = g.meta.info.metadata(source_version_metadata)) v.source_version_id = *marker;
    out.push_back(std::move(v));
  }
  co_return out;
}

async_result<done> gcs_destination::remove_version(const std::string& bucket, const std::string& key,
                                                   const std::string& version_id) {
  preconditions pre;
  pre.generation = parse_generation(version_id);
  if (!pre.generation) co_return done{};  // nothing of ours by that ID (a delete marker has none here)
  auto r = co_await client_.delete_object(bucket, key, pre);
  if (!r && r.error().kind != error_kind::not_found) co_return r.error();
  co_return done{};
}

async_result<done> gcs_destination::set_tagging(const std::string& bucket, const std::string& key,
                                                const object_info& replica, const std::string& tagging) {
  // The generation examined, live or noncurrent: a newer one is another version's business.
  preconditions pre;
  pre.generation = parse_generation(replica.version_id);
  co_return co_await client_.set_tags(bucket, key, pre, tagging);
}

async_result<std::unique_ptr<upload>> gcs_destination::begin(const std::string& bucket, const std::string& key,
                                                             const object_info& meta, std::uint64_t size,
                                                             std::size_t part_size, const upload_options& options) {
  http::cut_group* cut = options.cut;
  if (size <= part_size)
    co_return std::unique_ptr<upload>(std::make_unique<single_upload>(client_, bucket, key, meta, options.write));
  if (part_size == 0 || part_size % chunk_quantum)
    co_return bad_part_size(client_.store_name(), bucket, key, part_size);
  preconditions none;
  auto s = co_await client_.start_resumable_upload(bucket, key, meta, size, none, cut, options.write);
  if (!s) co_return s.error();
  co_return std::unique_ptr<upload>(
      std::make_unique<resumable_upload>(client_, std::move(s.value()), size, opts_.part_wait_timeout));
}

async_result<done> gcs_destination::remove(const std::string& bucket, const std::string& key) {
  preconditions none;
  auto r = co_await client_.delete_object(bucket, key, none);
  if (!r && r.error().kind != error_kind::not_found) co_return r.error();
  co_return done{};
}

async_result<done> gcs_destination::check_bucket(const std::string& bucket) {
  co_return co_await client_.probe_bucket(bucket);
}

}  // namespace archie::store::gcs
