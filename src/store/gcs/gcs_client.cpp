#include "store/gcs/gcs_client.hpp"

#include "http/percent_encoding.hpp"
#include "store/request_metrics.hpp"

#include "http/client.hpp"
#include "log/logger.hpp"
#include "metrics/registry.hpp"
#include "async/exponential_backoff.hpp"
#include "store/checksum.hpp"
#include "store/gcs/gcs_auth.hpp"
#include "store/gcs/gcs_response.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <prometheus/histogram.h>

#include <algorithm>
#include <stdexcept>

// GCC 12 rules (async/gcc12_coroutines.hpp): requests and errors are built by the plain
// functions in the anonymous namespace; what a co_await borrows is a named object.

namespace archie::store::gcs {
namespace asio = boost::asio;
namespace json = boost::json;
using namespace std::chrono_literals;

namespace {

constexpr int max_attempts = 4;
constexpr int max_chunk_failures = 5;  // consecutive failed chunk requests that persisted nothing
constexpr int max_retry_after_seconds = 30;

void observe(const std::string& store, const char* operation, int status, double seconds) {
  observe_request(store, operation, status, seconds);
}

error_kind classify(int status) {
  if (status == 404) return error_kind::not_found;
  if (status == 401 || status == 403) return error_kind::permission;
  if (status == 412) return error_kind::precondition_failed;
  // 410: the upload session is over (expired, cancelled, failed); a new upload will do.
  if (status == 408 || status == 410 || status == 429 || status >= 500) return error_kind::retryable;
  return error_kind::permanent;
}

void add_query(std::string& target, std::string_view name, const std::string& value) {
  target += target.find('?') == std::string::npos ? '?' : '&';
  target += name;
  target += '=';
  target += percent_encode(value);
}

void add_preconditions(std::string& target, const preconditions& pre) {
  if (pre.if_generation_match) add_query(target, "ifGenerationMatch", std::to_string(*pre.if_generation_match));
  if (pre.if_metageneration_match)
    add_query(target, "ifMetagenerationMatch", std::to_string(*pre.if_metageneration_match));
}

std::string metadata_json(const object_info& meta) {
  json::object o;
  if (!meta.content_type.empty()) o["contentType"] = meta.content_type;
  if (!meta.content_encoding.empty()) o["contentEncoding"] = meta.content_encoding;
  if (!meta.content_disposition.empty()) o["contentDisposition"] = meta.content_disposition;
  if (!meta.cache_control.empty()) o["cacheControl"] = meta.cache_control;
  if (!meta.user_metadata.empty()) {
    json::object md;
    for (const auto& [k, v] : meta.user_metadata) md[k] = v;
    o["metadata"] = std::move(md);
  }
  return json::serialize(o);
}

// The session URI's origin-form target ("/upload/storage/v1/b/...&upload_id=..."); it is
// sent to the configured endpoint (Google answers with its own host there).
std::string origin_form(const std::string& location) {
  if (!location.empty() && location.front() == '/') return location;
  auto scheme = location.find("://");
  if (scheme == std::string::npos) return {};
  auto slash = location.find('/', scheme + 3);
  return slash == std::string::npos ? std::string("/") : location.substr(slash);
}

upload_hashes whole_object_hashes(std::span<const std::byte> body) {
  upload_hashes h;
  h.crc32c = crc32c_base64(crc32c(body));
  h.md5 = content_md5(body);
  return h;
}

config::backoff_config retry_backoff() { return config::backoff_config{200ms, 2.0, 5000ms, 0.3}; }

http::endpoint storage_endpoint(const std::string& store, const std::string& url) {
  auto ep = http::parse_endpoint(url.find("://") == std::string::npos ? "https://" + url : url);
  if (!ep) throw std::invalid_argument("store " + store + ": endpoint \"" + url + "\" is not an http(s) URL");
  return *ep;
}

// One JSON API request before the token is added.
struct call {
  const char* operation = nullptr;
  std::string method;
  std::string bucket;
  std::string key;
  std::string target;  ///< origin-form, encoded
  http::header_list headers;
  std::span<const std::byte> body;
  std::span<std::byte> into;
  bool auth = true;        ///< false for session URI requests: the URI is the credential
  bool resumable = false;  ///< 308 Resume Incomplete is an answer, not an error
  int attempts = max_attempts;
};

call make_call(const char* operation, const char* method, const std::string& bucket, const std::string& key,
               std::string target) {
  call c;
  c.operation = operation;
  c.method = method;
  c.bucket = bucket;
  c.key = key;
  c.target = std::move(target);
  return c;
}

std::string bucket_path(const std::string& base, const std::string& bucket) {
  return base + "/storage/v1/b/" + percent_encode(bucket);
}

std::string object_path(const std::string& base, const std::string& bucket, const std::string& key) {
  return bucket_path(base, bucket) + "/o/" + percent_encode(key);
}

call metadata_call(const std::string& base, const std::string& bucket, const std::string& key) {
  return make_call("GetObjectMetadata", "GET", bucket, key, object_path(base, bucket, key));
}

call download_call(const std::string& base, const std::string& bucket, const std::string& key,
                   std::span<std::byte> into, const download_options& opts) {
  std::string target = object_path(base, bucket, key) + "?alt=media";
  if (opts.if_generation_match) add_query(target, "ifGenerationMatch", std::to_string(*opts.if_generation_match));
  call c = make_call("DownloadObject", "GET", bucket, key, std::move(target));
  if (!into.empty())
    c.headers.emplace_back("range", "bytes=" + std::to_string(opts.offset) + "-" +
                                        std::to_string(opts.offset + into.size() - 1));
  c.headers.emplace_back("accept-encoding", "gzip");  // stored bytes, no decompressive transcoding
  c.into = into;
  return c;
}

call delete_call(const std::string& base, const std::string& bucket, const std::string& key, const preconditions& pre) {
  std::string target = object_path(base, bucket, key);
  add_preconditions(target, pre);
  return make_call("DeleteObject", "DELETE", bucket, key, std::move(target));
}

call list_call(const std::string& base, const std::string& bucket, const std::string& prefix,
               const std::string& page_token, int max_results) {
  std::string target = bucket_path(base, bucket) + "/o";
  add_query(target, "fields", "items(name,size,generation,md5Hash),nextPageToken");
  add_query(target, "maxResults", std::to_string(max_results));
  if (!prefix.empty()) add_query(target, "prefix", prefix);
  if (!page_token.empty()) add_query(target, "pageToken", page_token);
  return make_call("ListObjects", "GET", bucket, "", std::move(target));
}

call bucket_call(const std::string& base, const std::string& bucket) {
  std::string target = bucket_path(base, bucket);
  add_query(target, "fields", "name");
  return make_call("GetBucket", "GET", bucket, "", std::move(target));
}

call start_call(const std::string& base, const std::string& bucket, const std::string& key, const object_info& meta,
                std::uint64_t size, const preconditions& pre, std::span<const std::byte> body) {
  std::string target = base + "/upload/storage/v1/b/" + percent_encode(bucket) + "/o?uploadType=resumable";
  add_query(target, "name", key);
  add_preconditions(target, pre);
  call c = make_call("StartResumableUpload", "POST", bucket, key, std::move(target));
  c.headers.emplace_back("content-type", "application/json; charset=UTF-8");
  c.headers.emplace_back("x-upload-content-length", std::to_string(size));
  if (!meta.content_type.empty()) c.headers.emplace_back("x-upload-content-type", meta.content_type);
  c.body = body;
  return c;
}

// The bytes of [offset, offset + bytes.size()) that the server does not have yet; the caller
// checks offset <= s.persisted <= end.
call chunk_call(const resumable_session& s, std::uint64_t offset, std::span<const std::byte> bytes, bool final,
                const upload_hashes& hashes) {
  auto rest = bytes.subspan(static_cast<std::size_t>(s.persisted - offset));
  call c = make_call("UploadChunk", "PUT", s.bucket, s.key, s.uri);
  c.auth = false;
  c.resumable = true;
  c.attempts = 1;  // a failed chunk is followed by a status query, not a blind resend
  std::string total = final ? std::to_string(s.total) : std::string("*");
  if (rest.empty())
    c.headers.emplace_back("content-range", "bytes */" + total);
  else
    c.headers.emplace_back("content-range", "bytes " + std::to_string(s.persisted) + "-" +
                                                std::to_string(s.persisted + rest.size() - 1) + "/" + total);
  if (final) {
    std::string h;
    if (!hashes.crc32c.empty()) h = "crc32c=" + hashes.crc32c;
    if (!hashes.md5.empty()) h += (h.empty() ? "" : ",") + std::string("md5=") + hashes.md5;
    if (!h.empty()) c.headers.emplace_back("x-goog-hash", h);
  }
  c.body = rest;
  return c;
}

call status_call(const resumable_session& s) {
  call c = make_call("QueryResumableUpload", "PUT", s.bucket, s.key, s.uri);
  c.auth = false;
  c.resumable = true;
  c.headers.emplace_back("content-range", "bytes */*");
  return c;
}

call cancel_call(const resumable_session& s) {
  call c = make_call("CancelResumableUpload", "DELETE", s.bucket, s.key, s.uri);
  c.auth = false;
  return c;
}

http::request build_request(const call& c) {
  http::request req;
  req.method = c.method;
  req.target = c.target;
  req.headers = c.headers;
  req.body = c.body;
  return req;
}

}  // namespace

std::string percent_encode(std::string_view s) { return http::percent_encode(s); }

struct gcs_client::impl {
  asio::any_io_executor executor;
  std::string store;
  config::gcs_store_config cfg;
  http::endpoint ep;
  http::client client;
  token_provider tokens;

  impl(asio::any_io_executor ex, std::string name, const config::gcs_store_config& c, asio::thread_pool* blocking)
      : executor(ex),
        store(std::move(name)),
        cfg(c),
        ep(storage_endpoint(store, c.endpoint)),
        client(ex, ep,
               http::client_options{static_cast<std::size_t>(std::max<std::int64_t>(1, c.max_connections)),
                                    std::chrono::milliseconds(5000), c.request_timeout,
                                    std::chrono::milliseconds(20000), c.ca_file, c.verify_tls}),
        tokens(ex, c, blocking) {}

  const std::string& base() const { return ep.base_path; }

  store_error make_error(const call& c, error_kind kind, int status, std::string code, std::string message,
                         std::string request_id) const {
    return store_error{kind, store, c.operation, c.bucket, c.key, status, std::move(code), std::move(message),
                       std::move(request_id)};
  }

  store_error error(const call& c, error_kind kind, std::string code, std::string message) const {
    return make_error(c, kind, 0, std::move(code), std::move(message), "");
  }

  // {"error": {"code": 404, "message": "...", "errors": [{"reason": "notFound", ...}]}}
  store_error error_from_response(const call& c, const http::response& r) const {
    auto body = parse_error_body(r.body);
    std::string code = std::move(body.reason), message = std::move(body.message);
    if (code.empty()) code = r.status == 404 ? "notFound" : "HTTP" + std::to_string(r.status);
    if (r.status == 401 || r.status == 403) message += " (credentials: " + tokens.source() + ")";
    // Session answers carry the upload id in X-GUploader-UploadID: part of the session
    // credential, so it is only kept for authenticated requests.
    std::string request_id = c.auth ? r.header("x-guploader-uploadid").value_or("") : "";
    return make_error(c, classify(r.status), r.status, std::move(code), std::move(message), std::move(request_id));
  }

  store_error with_call(const call& c, const store_error& auth) const {
    store_error e = auth;
    e.store = store;
    e.operation = c.operation;
    e.bucket = c.bucket;
    e.key = c.key;
    e.message = "no access token: " + e.message;
    return e;
  }

  // One logical request: token, send, classify; transient failures retried with backoff
  // (or after Retry-After) up to c.attempts; a 401 refreshes the token and retries once.
  asio::awaitable<result<http::response>> execute(const call& c) {
    async::exponential_backoff backoff(executor, retry_backoff());
    bool reauthorized = false;
    for (int attempt = 1;; ++attempt) {
      http::request req = build_request(c);
      std::string bearer;
      if (c.auth) {
        auto tok = co_await tokens.token();
        if (!tok) co_return with_call(c, tok.error());  // the provider has retried already
        bearer = tok.value();
        req.headers.emplace_back("authorization", "Bearer " + bearer);
      }
      auto started = std::chrono::steady_clock::now();
      auto outcome = co_await client.send(req, c.into);
      double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

      std::optional<store_error> err;
      int wait_seconds = 0;
      if (auto* te = std::get_if<http::transport_error>(&outcome)) {
        observe(store, c.operation, 0, seconds);
        err = make_error(c, error_kind::retryable, 0, te->ec ? te->ec.message() : std::string("transport"), te->what,
                         "");
      } else {
        auto& r = std::get<http::response>(outcome);
        observe(store, c.operation, r.status, seconds);
        if ((r.status >= 200 && r.status < 300) || (c.resumable && r.status == 308)) co_return std::move(r);
        if (r.status == 401 && c.auth && !reauthorized && tokens.invalidate(bearer)) {
          reauthorized = true;  // the token expired or was revoked early: one retry with a fresh one
          --attempt;
          continue;
        }
        err = error_from_response(c, r);
        wait_seconds = retry_after_seconds(r, max_retry_after_seconds);
      }
      if (!err->retryable() || attempt >= c.attempts || err->http_status == 410) co_return *err;
      log::debug("retrying GCS request", {{"store", store}, {"operation", c.operation}, {"attempt", attempt},
                                          {"error", err->describe()}});
      if (wait_seconds > 0) {
        asio::steady_timer pause(executor, std::chrono::seconds(wait_seconds));
        co_await pause.async_wait(asio::use_awaitable);
      } else {
        co_await backoff.wait();
      }
    }
  }
};

gcs_client::gcs_client(asio::any_io_executor executor, std::string store_name, const config::gcs_store_config& cfg,
                       asio::thread_pool* blocking)
    : impl_(std::make_unique<impl>(executor, std::move(store_name), cfg, blocking)) {}
gcs_client::~gcs_client() = default;

const std::string& gcs_client::store_name() const { return impl_->store; }
std::size_t gcs_client::connections_opened() const { return impl_->client.connections_opened(); }
std::size_t gcs_client::token_fetches() const { return impl_->tokens.fetches(); }
const std::string& gcs_client::credential_source() const { return impl_->tokens.source(); }

task<object_metadata> gcs_client::get_object_metadata(const std::string& bucket, const std::string& key) {
  auto c = metadata_call(impl_->base(), bucket, key);
  auto r = co_await impl_->execute(c);
  if (!r) co_return r.error();
  auto m = parse_object(r->body);
  if (!m) co_return impl_->error(c, error_kind::retryable, "BadResponse", "the object resource is not JSON");
  co_return std::move(*m);
}

task<object_metadata> gcs_client::download(const std::string& bucket, const std::string& key,
                                           std::span<std::byte> into, const download_options& opts) {
  auto c = download_call(impl_->base(), bucket, key, into, opts);
  auto r = co_await impl_->execute(c);
  if (!r) co_return r.error();
  co_return object_from_headers(r.value());
}

task<done> gcs_client::delete_object(const std::string& bucket, const std::string& key, const preconditions& pre) {
  auto c = delete_call(impl_->base(), bucket, key, pre);
  auto r = co_await impl_->execute(c);
  if (!r) co_return r.error();
  co_return done{};
}

task<list_page> gcs_client::list_objects(const std::string& bucket, const std::string& prefix,
                                         const std::string& page_token, int max_results) {
  auto c = list_call(impl_->base(), bucket, prefix, page_token, max_results);
  auto r = co_await impl_->execute(c);
  if (!r) co_return r.error();
  auto page = parse_list_page(r->body);
  if (!page) co_return impl_->error(c, error_kind::retryable, "BadResponse", "the listing is not JSON");
  co_return std::move(*page);
}

task<done> gcs_client::get_bucket(const std::string& bucket) {
  auto c = bucket_call(impl_->base(), bucket);
  auto r = co_await impl_->execute(c);
  if (!r) co_return r.error();
  co_return done{};
}

task<resumable_session> gcs_client::start_resumable_upload(const std::string& bucket, const std::string& key,
                                                           const object_info& meta, std::uint64_t size,
                                                           const preconditions& pre) {
  std::string body = metadata_json(meta);
  auto c = start_call(impl_->base(), bucket, key, meta, size, pre, std::as_bytes(std::span(body)));
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

task<done> gcs_client::upload_chunk(resumable_session& s, std::uint64_t offset, std::span<const std::byte> bytes,
                                    bool final, const upload_hashes& hashes) {
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

task<done> gcs_client::query_resumable_upload(resumable_session& s) {
  auto c = status_call(s);
  auto r = co_await impl_->execute(c);
  if (!r) co_return r.error();
  std::string bad = apply_session_answer(s, r.value());
  if (!bad.empty()) co_return impl_->error(c, error_kind::retryable, "BadResponse", bad);
  co_return done{};
}

task<done> gcs_client::cancel_resumable_upload(resumable_session& s) {
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

task<object_metadata> gcs_client::upload_object(const std::string& bucket, const std::string& key,
                                                std::span<const std::byte> body, const object_info& meta,
                                                const preconditions& pre) {
  auto started = co_await start_resumable_upload(bucket, key, meta, body.size(), pre);
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
