#pragma once
// gcs_client's private state and its request loop, shared by the client's operations
// (gcs_client.cpp) and the resumable upload (gcs_resumable_upload.cpp). Not for other users.
#include "store/gcs/gcs_auth.hpp"
#include "store/gcs/gcs_client.hpp"
#include "store/gcs/gcs_requests.hpp"
#include "store/gcs/gcs_response.hpp"
#include "store/request_runner.hpp"

#include <boost/asio/thread_pool.hpp>

namespace archie::store::gcs {

using requests::build_request;
using requests::call;
using requests::classify;
using requests::max_retry_after_seconds;
using requests::retry_backoff;
using requests::storage_endpoint;

struct gcs_client::impl {
  boost::asio::any_io_executor executor;
  std::string store;
  config::gcs_store_config cfg;
  http::endpoint ep;
  http::client client;
  token_provider tokens;

  impl(boost::asio::any_io_executor ex, std::string name, const config::gcs_store_config& c, boost::asio::thread_pool* blocking,
       std::shared_ptr<http::send_budget> budget)
      : executor(ex),
        store(std::move(name)),
        cfg(c),
        ep(storage_endpoint(store, c.endpoint)),
        client(ex, ep,
               http::client_options{static_cast<std::size_t>(std::max<std::int64_t>(1, c.max_connections)),
                                    std::chrono::milliseconds(5000), c.request_timeout,
                                    std::chrono::milliseconds(20000), c.ca_file, c.verify_tls, std::move(budget)}),
        tokens(ex, store, c, blocking) {}

  const std::string& base() const { return ep.base_path; }

  request_identity who(const call& c) const { return request_identity{store, c.operation, c.bucket, c.key}; }

  store_error error(const call& c, error_kind kind, std::string code, std::string message) const {
    return who(c).error(kind, 0, std::move(code), std::move(message));
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
    return who(c).error(classify(r.status), r.status, std::move(code), std::move(message), std::move(request_id));
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
  boost::asio::awaitable<result<http::response>> execute(const call& c) {
    std::string bearer;
    bool reauthorized = false;
    auto prepare = [&]() -> boost::asio::awaitable<result<http::request>> {
      http::request req = build_request(c);
      if (c.auth) {
        auto tok = co_await tokens.token();
        if (!tok) co_return with_call(c, tok.error());  // the provider has retried already
        bearer = tok.value();
        req.headers.emplace_back("authorization", "Bearer " + bearer);
      }
      co_return req;
    };
    auto judge = [&](const http::response& r) {
      verdict v;
      if ((r.status >= 200 && r.status < 300) || (c.resumable && r.status == 308)) return v;
      v.error = error_from_response(c, r);
      // The token expired or was revoked early: one retry with a fresh one.
      v.reauthorize = r.status == 401 && c.auth && !reauthorized && tokens.invalidate(bearer);
      reauthorized = reauthorized || v.reauthorize;
      v.final = r.status == 410;  // the upload session is gone: retrying the same request cannot help
      v.retry_after_seconds = retry_after_seconds(r, max_retry_after_seconds);
      return v;
    };
    request_identity caller = who(c);
    retry_rules rules{c.attempts, true, retry_backoff()};
    co_return co_await run_request(executor, client, caller, rules, c.into, prepare, judge);
  }
};

}  // namespace archie::store::gcs
