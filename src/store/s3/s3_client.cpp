#include "store/s3/s3_client.hpp"

#include "http/client.hpp"
#include "store/checksum.hpp"
#include "store/range_answer.hpp"
#include "store/request_runner.hpp"
#include "store/s3/credentials/credential_provider.hpp"
#include "store/s3/s3_requests.hpp"
#include "store/s3/s3_response.hpp"
#include "store/s3/sigv4.hpp"
#include "store/s3/xml_reader.hpp"
#include "store/source.hpp"

#include <algorithm>

namespace archie::store::s3 {
namespace asio = boost::asio;
using namespace std::chrono_literals;
using namespace requests;  // the request builders are this client's vocabulary

namespace {

constexpr int max_attempts = 4;
// Each answer must carry some of the rest; a server that keeps answering with half of what
// is left needs log2(part size) answers (23 for 5 MiB): past this it is broken, not slow.
constexpr int max_range_answers = 64;

// Outside the coroutine: GCC 12 rule 3 (async/gcc12_coroutines.hpp).
store_error range_refused(const std::string& store, const std::string& bucket, const std::string& key,
                          std::string why) {
  return store_error{error_kind::retryable, store, "GetObject", bucket, key, 0, "BadRange", std::move(why), ""};
}

// One of the reads a store keeps open (get_options::rest), given back when dropped.
class open_read_slot {
 public:
  static std::optional<open_read_slot> try_take(const std::shared_ptr<std::size_t>& open, std::size_t limit) {
    if (*open >= limit) return std::nullopt;
    ++*open;
    return open_read_slot(open);
  }
  open_read_slot(open_read_slot&& o) noexcept : open_(std::move(o.open_)) {}
  open_read_slot& operator=(open_read_slot&& o) noexcept {
    std::swap(open_, o.open_);
    return *this;
  }
  ~open_read_slot() {
    if (open_) --*open_;
  }

 private:
  explicit open_read_slot(std::shared_ptr<std::size_t> open) : open_(std::move(open)) {}
  std::shared_ptr<std::size_t> open_;
};

// The rest of a GET's answer, read part by part.
class s3_body_stream final : public body_stream {
 public:
  s3_body_stream(std::shared_ptr<http::body_rest> rest, open_read_slot slot, std::uint64_t position,
                 std::string store, std::string bucket, std::string key)
      : rest_(std::move(rest)),
        slot_(std::move(slot)),
        position_(position),
        end_(position + rest_->remaining()),
        store_(std::move(store)),
        bucket_(std::move(bucket)),
        key_(std::move(key)) {}

  std::uint64_t position() const override { return position_; }
  std::uint64_t end() const override { return end_; }

  async_result<done> read(std::span<std::byte> into, http::cut_group* cut) override {
    auto failed = co_await rest_->read(into, cut);
    if (failed) co_return broken(*failed);
    position_ += into.size();
    co_return done{};
  }

 private:
  store_error broken(const http::transport_error& e) const {
    return store_error{error_kind::retryable, store_, "GetObject", bucket_, key_, 0,
                       e.ec ? e.ec.message() : std::string("transport"), e.what, ""};
  }

  std::shared_ptr<http::body_rest> rest_;
  open_read_slot slot_;
  std::uint64_t position_, end_;
  std::string store_, bucket_, key_;
};

}  // namespace

struct s3_client::impl {
  asio::any_io_executor executor;
  std::string store;
  config::s3_store_config cfg;
  http::endpoint ep;
  http::client client;
  credential_provider credentials_source;
  bool sign_payload;
  // GETs whose answers go on (get_options::rest) hold a connection while their parts wait
  // for buffers, and their copies may ask this store for more meanwhile (tags, a HEAD, a
  // server-side copy): an eighth of the connections (at least one) is kept for requests
  // that end on their own, so those always find one.
  std::shared_ptr<std::size_t> open_reads = std::make_shared<std::size_t>(0);
  std::size_t max_open_reads;

  // The signing key changes once a day; deriving it costs four HMACs per request otherwise.
  std::string key_date;
  std::string key_secret;  // the secret cached_key was derived from (credentials rotate)
  signing_key cached_key{};

  impl(asio::any_io_executor ex, std::string name, const config::s3_store_config& c,
       std::shared_ptr<http::send_budget> budget)
      : executor(ex),
        store(std::move(name)),
        cfg(c),
        ep(http::parse_endpoint(c.endpoint).value()),
        client(ex, ep,
               http::client_options{static_cast<std::size_t>(c.max_connections), c.connect_timeout, c.request_timeout,
                                    std::chrono::milliseconds(20000), c.ca_file, c.verify_tls, std::move(budget)}),
        credentials_source(ex, store, c),
        sign_payload(c.payload_signing == config::payload_signing_mode::signed_payload ||
                     (c.payload_signing == config::payload_signing_mode::automatic && !ep.tls)),
        max_open_reads(static_cast<std::size_t>(c.max_connections) -
                       std::max<std::size_t>(1, static_cast<std::size_t>(c.max_connections) / 8)) {}

  // One checksum per body, and one the server verifies: a signed payload's SHA-256 is checked
  // by the server (XAmzContentSHA256Mismatch), so Content-MD5 would only hash the bytes a
  // second time (MD5 costs more CPU than SHA-256 with SHA-NI). An unsigned payload gets
  // Content-MD5 (BadDigest).
  void add_body_checksum(http::header_list& h, const part_body& body) const {
    if (!sign_payload) h.emplace_back("content-md5", body.content_md5());
  }

  // A credentials failure, told as a failure of the call that needed them.
  store_error with_call_context(const call& c, store_error e) {
    e.store = store;
    e.bucket = c.bucket;
    e.key = c.key;
    e.message = std::string(c.operation) + ": " + e.message;
    return e;
  }

  store_error error_from_response(const call& c, const http::response& r) {
    auto e = parse_error(r);
    std::string code = std::move(e.code), message = std::move(e.message), request_id = std::move(e.request_id);
    if (code.empty()) code = r.status == 404 ? "NotFound" : "HTTP" + std::to_string(r.status);
    request_identity who{store, c.operation, c.bucket, c.key};
    // Classified before `code` is moved into the error: argument evaluation order is
    // unspecified (GCC goes right to left), which once made every code-only class unreachable.
    const error_kind kind = classify(r.status, code);
    return who.error(kind, r.status, std::move(code), std::move(message), std::move(request_id));
  }

  signing_result sign(const call& c, http::header_list& headers, const std::string& path, const std::string& host,
                      const credentials& creds) {
    request_to_sign req;
    req.method = c.method;
    req.path = path;
    req.query = c.query;
    req.headers = headers;
    req.headers.emplace_back("host", host);
    if (sign_payload) {
      // Object data brings its part's digests (hashed once for every destination); other
      // bodies (XML, empty) are hashed here, by the same code.
      req.payload_hash = c.digests ? c.digests->sha256_hex() : part_body(c.body).sha256_hex();
    } else {
      req.payload_hash = std::string(unsigned_payload);
    }
    auto now = std::chrono::system_clock::now();
    auto t = std::chrono::system_clock::to_time_t(now);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char date[40];
    std::snprintf(date, sizeof date, "%04d%02d%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
    if (key_date != date || key_secret != creds.secret_access_key) {
      cached_key = derive_signing_key(creds.secret_access_key, date, cfg.region, "s3");
      key_date = date;
      key_secret = creds.secret_access_key;
    }
    return sign_v4(req, creds, cached_key, cfg.region, "s3", now);
  }

  // One logical S3 call: sign, send, classify; retried with backoff when idempotent and the
  // failure is transient (5xx, SlowDown, resets). Re-signed per attempt (x-amz-date moves).
  asio::awaitable<result<http::response>> execute(const call& c) {
    std::string host = ep.host_header();
    std::string path = ep.base_path;
    if (cfg.path_style || c.bucket.empty()) {
      if (!c.bucket.empty()) path += "/" + c.bucket;
    } else {
      host = c.bucket + "." + host;
    }
    if (!c.key.empty() || !c.bucket.empty()) path += "/" + c.key;
    if (path.empty()) path = "/";
    std::string target = uri_encode(path, false);
    if (!c.query.empty()) target += "?" + canonical_query_string(c.query);

    credentials creds;
    bool refreshed_credentials = false;
    auto prepare = [&]() -> asio::awaitable<result<http::request>> {
      auto fresh = co_await credentials_source.get();
      if (!fresh) co_return with_call_context(c, fresh.error());
      creds = std::move(fresh.value());
      http::header_list headers = c.headers;
      auto signed_req = sign(c, headers, path, host, creds);
      for (auto& h : signed_req.headers_to_add) headers.push_back(std::move(h));
      headers.emplace_back("host", host);
      http::request r{c.method, target, std::move(headers), c.body};
      r.body_may_end_early = c.into_may_end_early;
      r.body_may_continue = c.into_may_continue;
      r.cut = c.cut;
      co_return r;
    };
    auto judge = [&](const http::response& r) {
      verdict v;
      // CompleteMultipartUpload and CopyObject can fail inside a 200 response.
      bool error_in_200 = r.status == 200 && r.body.find("<Error>") != std::string::npos &&
                          r.body.find("<Code>") != std::string::npos;
      if (r.status >= 200 && r.status < 300 && !error_in_200) return v;
      v.error = error_from_response(c, r);
      if (error_in_200) v.error->kind = error_kind::retryable;
      // A refusal of the credentials means the request was not carried out: re-sending it once
      // with fresh ones is safe even when it is not idempotent.
      bool refused = credentials_refused(*v.error);
      if (!refreshed_credentials && (refused || maybe_credentials_refused(*v.error)) &&
          credentials_source.invalidate(creds, refused)) {
        refreshed_credentials = true;
        v.reauthorize = true;
        log::info("S3 credentials refused; fetching fresh ones and retrying once",
                  {{"store", store}, {"operation", c.operation}, {"code", v.error->code}});
      }
      return v;
    };
    request_identity who{store, c.operation, c.bucket, c.key};
    retry_rules rules{max_attempts, c.idempotent};
    co_return co_await run_request(executor, client, who, rules, c.into, prepare, judge);
  }
};

s3_client::s3_client(asio::any_io_executor executor, std::string store_name, const config::s3_store_config& cfg,
                     std::shared_ptr<http::send_budget> budget)
    : impl_(std::make_unique<impl>(executor, std::move(store_name), cfg, std::move(budget))) {}
s3_client::~s3_client() = default;

const std::string& s3_client::store_name() const { return impl_->store; }
std::size_t s3_client::parts_per_get() const { return static_cast<std::size_t>(impl_->cfg.parts_per_get); }
std::size_t s3_client::connections_opened() const { return impl_->client.connections_opened(); }
void s3_client::abort_requests() { impl_->client.abort_all(); }

async_result<object_info> s3_client::head_object(const std::string& bucket, const std::string& key,
                                                 const std::string& version_id) {
  query_list q;
  if (names_a_version(version_id)) q.emplace_back("versionId", version_id);
  // The object's flexible checksum, if it has one, comes back to be checked against the bytes.
  http::header_list h{{"x-amz-checksum-mode", "ENABLED"}};
  auto c = make_call("HeadObject", "HEAD", bucket, key, std::move(q), std::move(h), {}, {});
  auto r = co_await impl_->execute(c);
  if (!r) {
    // A HEAD's refusal has no body to say why; for a 400 one byte's GET tells (an SSE-C
    // object is the usual cause, and it must be named, not retried or copied).
    if (r.error().http_status != 400) co_return r.error();
    std::byte one[1];
    const std::string any;
    auto one_byte = ranged_get_call(bucket, key, one, 0, any, version_id, nullptr);  // GCC 12 rule 1
    auto probe = co_await impl_->execute(one_byte);
    if (probe) co_return r.error();
    auto named = recognise_customer_key(probe.error());
    if (named.code == customer_key_code) co_return named;
    co_return r.error();
  }
  // Without a size the copy would be an empty object acked as replicated: refuse the answer.
  if (!r->header("content-length")) co_return missing_content_length(impl_->store, bucket, key, r->status);
  co_return info_from_headers(r.value());
}

async_result<object_info> s3_client::get_object(const std::string& bucket, const std::string& key, std::span<std::byte> into,
                                        const get_options& opts) {
  std::string pinned = opts.if_match, pinned_version = opts.version_id;
  auto c = ranged_get_call(bucket, key, into, opts.offset, pinned, pinned_version, opts.cut);
  std::optional<open_read_slot> slot;
  if (opts.rest && !into.empty()) slot = open_read_slot::try_take(impl_->open_reads, impl_->max_open_reads);
  if (slot) let_answer_go_on(c, opts.offset, opts.rest_to);
  auto r = co_await impl_->execute(c);
  if (!r) co_return recognise_customer_key(r.error());
  object_info info = info_from_headers(r.value());
  if (into.empty()) co_return info;
  // Only bytes the server proved to be [offset, offset + n) of this object are used; a
  // shorter range is completed by asking for the rest, pinned to the same version.
  std::size_t have = 0;
  std::optional<std::uint64_t> total;  // "bytes a-b/*" names none; a later answer may
  for (int answers = 1;; ++answers) {
    const std::uint64_t at = opts.offset + have;
    const std::uint64_t continues = r->rest ? r->rest->remaining() : 0;
    auto judged = judge_range_answer(r->status, r->header("content-range"), at, into.size() - have, r->body_bytes,
                                     opts.may_end_early, continues);
    if (judged.error.empty() && judged.total && total && *judged.total != *total)
      judged.error = "object size changed between answers";
    if (!judged.error.empty()) co_return range_refused(impl_->store, bucket, key, judged.error);
    if (judged.total) total = judged.total;
    have += judged.received;
    if (judged.continues > 0 && slot) {
      *opts.rest = std::make_shared<s3_body_stream>(std::move(r->rest), std::move(*slot), at + judged.received,
                                                    impl_->store, bucket, key);
      slot.reset();
    }
    if (!judged.more) break;
    if (answers >= max_range_answers)
      co_return range_refused(impl_->store, bucket, key, "still short after " + std::to_string(answers) + " answers");
    if (pinned.empty()) pinned = info.etag;
    if (pinned_version.empty()) pinned_version = info.version_id;
    auto rest = ranged_get_call(bucket, key, into.subspan(have), opts.offset + have, pinned, pinned_version, opts.cut);
    if (slot) let_answer_go_on(rest, opts.offset + have, opts.rest_to);
    r = co_await impl_->execute(rest);
    if (!r) co_return r.error();
  }
  if (total) info.size = *total;
  // The caller uses `size` bytes from `into`: never more than arrived.
  const std::uint64_t going_on = opts.rest && *opts.rest ? (*opts.rest)->end() - (*opts.rest)->position() : 0;
  if (opts.may_end_early && info.size > opts.offset + have + going_on)
    co_return range_refused(impl_->store, bucket, key, "answer ended before the object did");
  co_return info;
}

async_result<std::string> s3_client::put_object(const std::string& bucket, const std::string& key,
                                        const part_body& body, const object_info& meta,
                                        const config::write_options* write) {
  http::header_list h;
  add_metadata_headers(h, meta);
  add_tagging_header(h, meta);
  add_write_options(h, write);
  add_object_lock_headers(h, meta, write);
  add_source_checksum_header(h, meta);
  impl_->add_body_checksum(h, body);
  auto c = make_call("PutObject", "PUT", bucket, key, {}, std::move(h), body.bytes(), {});
  c.digests = &body;
  c.cut = body.cut();
  auto r = co_await impl_->execute(c);
  if (!r) co_return r.error();
  co_return unquote(r->header("etag").value_or(""));
}

async_result<done> s3_client::delete_object(const std::string& bucket, const std::string& key) {
  auto c = make_call("DeleteObject", "DELETE", bucket, key, {}, {}, {}, {});
  auto r = co_await impl_->execute(c);
  if (!r) co_return r.error();
  co_return done{};
}

async_result<done> s3_client::delete_object_version(const std::string& bucket, const std::string& key,
                                                   const std::string& version_id) {
  auto c = make_call("DeleteObject", "DELETE", bucket, key, {{"versionId", version_id}}, {}, {}, {});
  auto r = co_await impl_->execute(c);
  if (!r && r.error().kind != error_kind::not_found) co_return r.error();
  co_return done{};
}

async_result<version_history> s3_client::list_object_versions(const std::string& bucket, const std::string& key) {
  version_history out;
  std::string key_marker, version_marker;
  for (;;) {
    auto listed = co_await list_versions_page(bucket, key, key_marker, version_marker);
    if (!listed) co_return listed.error();
    auto& page = listed.value();
    bool past = false;  // keys come sorted: once past `key`, the rest only share its prefix
    for (auto& [k, v] : page.entries) {
      if (k == key) out.push_back(std::move(v));
      else if (k > key) past = true;
    }
    if (past || !page.truncated) break;
    if (page.next_key_marker.empty() && page.next_version_id_marker.empty()) break;  // no way on
    key_marker = std::move(page.next_key_marker);
    version_marker = std::move(page.next_version_id_marker);
  }
  co_return out;
}

async_result<std::string> s3_client::bucket_versioning(const std::string& bucket) {
  auto c = make_call("GetBucketVersioning", "GET", bucket, "", {{"versioning", ""}}, {}, {}, {});
  auto r = co_await impl_->execute(c);
  if (!r) co_return r.error();
  co_return xml_first(r->body, "Status").value_or("");
}

async_result<version_page> s3_client::list_versions_page(const std::string& bucket, const std::string& prefix,
                                                         const std::string& key_marker,
                                                         const std::string& version_marker, int max_keys) {
  query_list q{{"versions", ""}, {"max-keys", std::to_string(max_keys)}};
  if (!prefix.empty()) q.emplace_back("prefix", prefix);
  if (!key_marker.empty()) q.emplace_back("key-marker", key_marker);
  if (!version_marker.empty()) q.emplace_back("version-id-marker", version_marker);
  auto c = make_call("ListObjectVersions", "GET", bucket, "", std::move(q), {}, {}, {});
  auto r = co_await impl_->execute(c);
  if (!r) co_return r.error();
  co_return parse_object_versions(r->body);
}

async_result<list_page> s3_client::list_objects(const std::string& bucket, const std::string& prefix,
                                        const std::string& continuation_token, int max_keys) {
  std::vector<std::pair<std::string, std::string>> q{{"list-type", "2"}, {"max-keys", std::to_string(max_keys)}};
  if (!prefix.empty()) q.emplace_back("prefix", prefix);
  if (!continuation_token.empty()) q.emplace_back("continuation-token", continuation_token);
  auto c = make_call("ListObjectsV2", "GET", bucket, "", std::move(q), {}, {}, {});
  auto r = co_await impl_->execute(c);
  if (!r) co_return r.error();
  co_return parse_list_objects(r->body);
}

async_result<std::string> s3_client::create_multipart_upload(const std::string& bucket, const std::string& key,
                                                     const object_info& meta, http::cut_group* cut,
                                                     const config::write_options* write) {
  http::header_list h;
  add_metadata_headers(h, meta);
  add_tagging_header(h, meta);
  add_write_options(h, write);
  add_object_lock_headers(h, meta, write);
  std::vector<std::pair<std::string, std::string>> q{{std::string("uploads"), std::string()}};
  auto c = make_call("CreateMultipartUpload", "POST", bucket, key, std::move(q), std::move(h), {}, {});
  // Not idempotent: re-sending after the request went out would open a second upload and
  // orphan the first, whose id we never saw.
  c.idempotent = false;
  c.cut = cut;
  auto r = co_await impl_->execute(c);
  if (!r) co_return r.error();
  auto id = xml_first(r->body, "UploadId");
  if (!id || id->empty()) co_return missing_upload_id(impl_->store, bucket, key, r->status);
  co_return *id;
}

async_result<std::string> s3_client::upload_part(const std::string& bucket, const std::string& key,
                                         const std::string& upload_id, int part_number,
                                         const part_body& body) {
  auto c = upload_part_call(bucket, key, upload_id, part_number, body);
  c.cut = body.cut();
  impl_->add_body_checksum(c.headers, body);
  auto r = co_await impl_->execute(c);
  if (!r) co_return r.error();
  co_return unquote(r->header("etag").value_or(""));
}

async_result<std::string> s3_client::complete_multipart_upload(const std::string& bucket, const std::string& key,
                                                       const std::string& upload_id,
                                                       const std::vector<completed_part>& parts,
                                                       bool etag_wanted) {
  std::string xml = "<CompleteMultipartUpload>";
  for (const auto& p : parts)
    xml += "<Part><PartNumber>" + std::to_string(p.number) + "</PartNumber><ETag>\"" + xml_escape(p.etag) +
           "\"</ETag></Part>";
  xml += "</CompleteMultipartUpload>";
  auto body = std::as_bytes(std::span(xml));
  auto c = complete_call(bucket, key, upload_id, body);
  auto r = co_await impl_->execute(c);
  if (!r) co_return r.error();
  std::string etag = unquote(xml_first(r->body, "ETag").value_or(""));
  if (etag.empty() && etag_wanted) {  // RGW may answer with an empty ETag; the object's HEAD has the real one
    auto head = co_await head_object(bucket, key);
    if (head) etag = head->etag;
  }
  co_return etag;
}

async_result<done> s3_client::abort_multipart_upload(const std::string& bucket, const std::string& key,
                                             const std::string& upload_id) {
  auto c = abort_call(bucket, key, upload_id);
  auto r = co_await impl_->execute(c);
  if (!r && r.error().kind != error_kind::not_found) co_return r.error();
  co_return done{};
}

async_result<std::vector<multipart_upload>> s3_client::list_multipart_uploads(const std::string& bucket,
                                                                      const std::string& prefix,
                                                                      http::cut_group* cut) {
  std::vector<multipart_upload> out;
  std::string key_marker, upload_marker;
  for (;;) {
    std::vector<std::pair<std::string, std::string>> q{{std::string("uploads"), std::string()}};
    if (!prefix.empty()) q.emplace_back("prefix", prefix);
    if (!key_marker.empty()) q.emplace_back("key-marker", key_marker);
    if (!upload_marker.empty()) q.emplace_back("upload-id-marker", upload_marker);
    auto c = make_call("ListMultipartUploads", "GET", bucket, "", std::move(q), {}, {}, {});
    c.cut = cut;
    auto r = co_await impl_->execute(c);
    if (!r) co_return r.error();
    auto page = parse_multipart_uploads(r->body);
    for (auto& u : page.uploads) out.push_back(std::move(u));
    if (!page.truncated) break;
    key_marker = std::move(page.next_key_marker);
    upload_marker = std::move(page.next_upload_id_marker);
    if (key_marker.empty() && upload_marker.empty()) break;  // a server that pages without markers
  }
  co_return out;
}

async_result<std::string> s3_client::copy_object(const std::string& src_bucket, const std::string& src_key,
                                         const std::string& dst_bucket, const std::string& dst_key,
                                         const object_info* replace, const config::write_options* write) {
  auto c = copy_call(src_bucket, src_key, dst_bucket, dst_key, replace);
  add_write_options(c.headers, write);
  if (replace) add_object_lock_headers(c.headers, *replace, write);
  auto r = co_await impl_->execute(c);
  if (!r) co_return r.error();
  co_return unquote(xml_first(r->body, "ETag").value_or(""));  // RGW returns it unquoted
}

async_result<std::string> s3_client::upload_part_copy(const std::string& src_bucket, const std::string& src_key,
                                              std::uint64_t first, std::uint64_t last, const std::string& dst_bucket,
                                              const std::string& dst_key, const std::string& upload_id,
                                              int part_number) {
  auto c = part_copy_call(src_bucket, src_key, first, last, dst_bucket, dst_key, upload_id,
                                                  part_number);
  auto r = co_await impl_->execute(c);
  if (!r) co_return r.error();
  co_return unquote(xml_first(r->body, "ETag").value_or(""));
}

async_result<done> s3_client::create_bucket(const std::string& bucket) {
  auto c = make_call("CreateBucket", "PUT", bucket, "", {}, {}, {}, {});
  auto r = co_await impl_->execute(c);
  if (!r && r.error().code != "BucketAlreadyOwnedByYou") co_return r.error();
  co_return done{};
}

async_result<std::string> s3_client::get_object_tagging(const std::string& bucket, const std::string& key,
                                                        const std::string& version_id) {
  auto c = get_tagging_call(bucket, key, version_id);
  auto r = co_await impl_->execute(c);
  if (!r) co_return r.error();
  co_return tagging_from_document(r->body);
}

async_result<done> s3_client::put_object_tagging(const std::string& bucket, const std::string& key,
                                                 const std::string& version_id, const std::string& tagging) {
  if (tagging.empty()) {
    auto c = delete_tagging_call(bucket, key, version_id);
    auto r = co_await impl_->execute(c);
    if (!r) co_return r.error();
    co_return done{};
  }
  std::string document = tagging_document(tagging);
  part_body body(std::as_bytes(std::span(document)));
  auto c = put_tagging_call(bucket, key, version_id, body.bytes());
  // Servers ask for a checksum of this body (AWS requires one): MD5, or the signed SHA-256.
  impl_->add_body_checksum(c.headers, body);
  c.digests = &body;
  auto r = co_await impl_->execute(c);
  if (!r) co_return r.error();
  co_return done{};
}

async_result<done> s3_client::put_object_lock(const std::string& bucket, const std::string& key,
                                              const object_info& replica, const object_info& wanted) {
  if (replica.lock_mode != wanted.lock_mode || replica.lock_retain_until != wanted.lock_retain_until) {
    std::string document = retention_document(wanted);
    part_body body(std::as_bytes(std::span(document)));
    // Shortening or removing a governance retention needs the bypass (and its permission).
    auto c = put_retention_call(bucket, key, replica.version_id, body.bytes(), replica.lock_mode == "GOVERNANCE");
    impl_->add_body_checksum(c.headers, body);  // S3 asks for one on object-lock requests
    c.digests = &body;
    auto r = co_await impl_->execute(c);
    if (!r) co_return r.error();
  }
  if ((replica.legal_hold == "ON") != (wanted.legal_hold == "ON")) {
    std::string document = legal_hold_document(wanted.legal_hold == "ON");
    part_body body(std::as_bytes(std::span(document)));
    auto c = put_legal_hold_call(bucket, key, replica.version_id, body.bytes());
    impl_->add_body_checksum(c.headers, body);
    c.digests = &body;
    auto r = co_await impl_->execute(c);
    if (!r) co_return r.error();
  }
  co_return done{};
}

async_result<done> s3_client::head_bucket(const std::string& bucket) {
  auto c = make_call("HeadBucket", "HEAD", bucket, "", {}, {}, {}, {});
  auto r = co_await impl_->execute(c);
  if (!r) co_return r.error();
  co_return done{};
}

}  // namespace archie::store::s3
