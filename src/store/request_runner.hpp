#pragma once
// One logical store request, the same for S3 and GCS: prepare (sign or authorize) a fresh
// request per attempt, send it, time it, map a transport failure, let the store judge the
// answer, and retry transient failures with backoff (or after the server's Retry-After).
// The stores differ only in the two hooks; the loop, the metric and the retry rules live here.
#include "async/exponential_backoff.hpp"
#include "http/client.hpp"
#include "log/logger.hpp"
#include "store/request_metrics.hpp"
#include "store/store_error.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <optional>
#include <span>
#include <type_traits>

namespace archie::store {

/// Who is asking what: every error the runner makes carries it.
struct request_identity {
  const std::string& store;
  const char* operation;
  const std::string& bucket;
  const std::string& key;

  store_error error(error_kind kind, int status, std::string code, std::string message,
                    std::string request_id = {}) const {
    return store_error{kind, store, operation, bucket, key, status, std::move(code), std::move(message),
                       std::move(request_id)};
  }
};

struct retry_rules {
  int max_attempts = 4;
  /// false: a request that may have reached the server is never sent again.
  bool idempotent = true;
  config::backoff_config backoff{std::chrono::milliseconds(200), 2.0, std::chrono::milliseconds(5000), 0.3};
};

/// The store's reading of one HTTP answer.
struct verdict {
  std::optional<store_error> error;  ///< empty: the answer is the result
  bool reauthorize = false;          ///< credentials went stale: retry once now, not counted
  bool final = false;                ///< never retry this one, whatever its kind
  int retry_after_seconds = 0;       ///< the server asked for this pause before a retry
};

namespace detail {
template <class T>
struct is_awaitable : std::false_type {};
template <class T>
struct is_awaitable<boost::asio::awaitable<T>> : std::true_type {};
}  // namespace detail

/// `prepare()` -> result<http::request>, or an awaitable of one, signed or authorized for this
/// attempt; `judge(http::response&)` -> verdict. Returns the successful response or the last
/// error. Both callables are named objects of the caller (GCC 12 rule 2, async/gcc12_coroutines.hpp).
template <class Prepare, class Judge>
boost::asio::awaitable<result<http::response>> run_request(boost::asio::any_io_executor executor, http::client& client,
                                                           const request_identity& who, const retry_rules& rules,
                                                           std::span<std::byte> into, Prepare& prepare, Judge& judge) {
  async::exponential_backoff backoff(executor, rules.backoff);
  bool reauthorized = false;
  for (int attempt = 1;; ++attempt) {
    result<http::request> req = store_error{};
    if constexpr (detail::is_awaitable<decltype(prepare())>::value)
      req = co_await prepare();
    else
      req = prepare();
    if (!req) co_return req.error();
    auto started = std::chrono::steady_clock::now();
    auto outcome = co_await client.send(*req, into);
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

    store_error err;
    int pause_seconds = 0;
    if (!outcome) {
      const http::transport_error& te = outcome.error();
      observe_request(who.store, who.operation, 0, seconds);
      // Transient either way; whether this request may be sent again is decided here.
      err = who.error(error_kind::retryable, 0, te.ec ? te.ec.message() : std::string("transport"), te.what);
      if (te.request_sent && !rules.idempotent) co_return err;
      if (te.ec == boost::asio::error::operation_aborted) co_return err;  // cut by shutdown: no retry
    } else {
      http::response& r = *outcome;
      observe_request(who.store, who.operation, r.status, seconds);
      verdict v = judge(r);
      if (!v.error) co_return std::move(r);
      if (v.reauthorize && !reauthorized) {
        reauthorized = true;
        --attempt;
        continue;
      }
      if (v.final) co_return std::move(*v.error);
      err = std::move(*v.error);
      pause_seconds = v.retry_after_seconds;
    }
    if (!err.retryable() || !rules.idempotent || attempt >= rules.max_attempts) co_return err;
    log::debug("retrying store request", {{"store", who.store}, {"operation", who.operation}, {"attempt", attempt},
                                          {"error", err.describe()}});
    if (pause_seconds > 0) {
      boost::asio::steady_timer pause(executor, std::chrono::seconds(pause_seconds));
      co_await pause.async_wait(boost::asio::use_awaitable);
    } else {
      co_await backoff.wait();
    }
  }
}

}  // namespace archie::store
