// The resumable upload protocol: start a session, send chunks in order, resume from the
// server's offset after a failure, cancel.
#include "store/gcs/gcs_client.hpp"

#include "async/exponential_backoff.hpp"
#include "log/logger.hpp"
#include "store/gcs/gcs_client_impl.hpp"

// GCC 12 rules (async/gcc12_coroutines.hpp): requests and errors are built by the plain
// functions of gcs_requests; what a co_await borrows is a named object.

namespace archie::store::gcs {
namespace asio = boost::asio;
using namespace requests;

async_result<resumable_session> gcs_client::start_resumable_upload(const std::string& bucket, const std::string& key,
                                                           const object_info& meta, std::uint64_t size,
                                                           const preconditions& pre, http::cut_group* cut,
                                                           const config::write_options* write) {
  std::string body = metadata_json(meta, write);
  auto c = start_call(impl_->base(), bucket, key, meta, size, pre, std::as_bytes(std::span(body)), write);
  c.cut = cut;
  auto r = co_await impl_->execute(c);
  if (!r) co_return r.error();
  std::string uri = origin_form(r->header("location").value_or(""));
  if (uri.empty())
    co_return impl_->error(c, error_kind::retryable, "BadResponse", "no session URI (Location) in the answer");
  resumable_session s;
  s.bucket = bucket;
  s.key = key;
  s.uri = std::move(uri);
  s.total = size;
  co_return std::move(s);
}

async_result<done> gcs_client::upload_chunk(resumable_session& s, std::uint64_t offset, std::span<const std::byte> bytes,
                                    bool final, const upload_hashes& hashes, http::cut_group* cut) {
  const std::uint64_t end = offset + bytes.size();
  auto probe = make_call("UploadChunk", "PUT", s.bucket, s.key, std::string());  // names errors only
  if (final && end != s.total)
    co_return impl_->error(probe, error_kind::permanent, "BadChunk",
                           "final chunk ends at " + std::to_string(end) + ", the session has " +
                               std::to_string(s.total) + " bytes");
  if (!final && (offset % chunk_quantum || end % chunk_quantum))
    co_return impl_->error(probe, error_kind::permanent, "BadChunk",
                           "chunk [" + std::to_string(offset) + ", " + std::to_string(end) +
                               ") is not on 256 KiB boundaries");
  async::exponential_backoff backoff(impl_->executor, retry_backoff());
  int failures = 0;
  for (;;) {
    if (s.result) co_return done{};  // finalized, perhaps by a request whose answer was lost
    if (s.persisted < offset)
      co_return impl_->error(probe, error_kind::retryable, "UploadSessionLostData",
                             "the server has " + std::to_string(s.persisted) + " bytes; this chunk starts at " +
                                 std::to_string(offset));
    if (!final && s.persisted >= end) co_return done{};
    const std::uint64_t before = s.persisted;
    auto c = chunk_call(s, offset, bytes, final, hashes);
    c.cut = cut;
    auto r = co_await impl_->execute(c);
    std::optional<store_error> err;
    if (r) {
      std::string bad = apply_session_answer(s, r.value());
      if (!bad.empty()) err = impl_->error(c, error_kind::retryable, "BadResponse", bad);
      else if (s.result || s.persisted > before) failures = 0;  // progress: go on with the rest
      else err = impl_->error(c, error_kind::retryable, "ChunkNotPersisted", "the server kept none of the chunk");
    } else {
      err = r.error();
    }
    if (!err) continue;
    if (cut && cut->is_cut()) co_return *err;  // the copy was cancelled: no second try
    if (!err->retryable() || err->http_status == 410 || ++failures >= max_chunk_failures) co_return *err;
    log::debug("GCS upload chunk failed; asking the session where to resume",
               {{"store", impl_->store}, {"bucket", s.bucket}, {"key", s.key}, {"persisted", s.persisted},
                {"error", err->describe()}});
    co_await backoff.wait();
    auto q = co_await query_resumable_upload(s);
    if (!q && !q.error().retryable()) co_return q.error();
    if (q && (s.result || s.persisted > before)) failures = 0;
  }
}

async_result<done> gcs_client::query_resumable_upload(resumable_session& s) {
  auto c = status_call(s);
  auto r = co_await impl_->execute(c);
  if (!r) co_return r.error();
  std::string bad = apply_session_answer(s, r.value());
  if (!bad.empty()) co_return impl_->error(c, error_kind::retryable, "BadResponse", bad);
  co_return done{};
}

async_result<done> gcs_client::cancel_resumable_upload(resumable_session& s) {
  auto c = cancel_call(s);
  auto r = co_await impl_->execute(c);
  if (!r) {
    const auto& e = r.error();
    // 499: cancelled; 404/410: already gone (expired, cancelled or failed).
    if (e.http_status == 499 || e.http_status == 404 || e.http_status == 410) co_return done{};
    co_return e;
  }
  co_return done{};
}

async_result<object_metadata> gcs_client::upload_object(const std::string& bucket, const std::string& key,
                                                std::span<const std::byte> body, const object_info& meta,
                                                const preconditions& pre, const config::write_options* write) {
  http::cut_group* no_cut = nullptr;
  auto started = co_await start_resumable_upload(bucket, key, meta, body.size(), pre, no_cut, write);
  if (!started) co_return started.error();
  auto& s = started.value();
  upload_hashes hashes = whole_object_hashes(body);
  auto sent = co_await upload_chunk(s, 0, body, true, hashes);
  if (!sent) {
    auto cancelled = co_await cancel_resumable_upload(s);
    (void)cancelled;
    co_return sent.error();
  }
  if (!s.result) co_return impl_->error(status_call(s), error_kind::retryable, "BadResponse", "upload not finalized");
  co_return std::move(*s.result);
}

}  // namespace archie::store::gcs
