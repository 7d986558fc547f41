#include "store/gcs/gcs_auth.hpp"

#include "http/percent_encoding.hpp"

#include "config/secret_file.hpp"
#include "http/client_cache.hpp"
#include "log/logger.hpp"
#include "async/run_blocking.hpp"
#include "async/single_flight.hpp"
#include "store/checksum.hpp"
#include "store/request_runner.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

// GCC 12 rules (async/gcc12_coroutines.hpp): errors and requests are built by the plain
// functions below.

namespace archie::store::gcs {
namespace asio = boost::asio;
namespace json = boost::json;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

constexpr const char* jwt_bearer_grant = "urn:ietf:params:oauth:grant-type:jwt-bearer";
constexpr std::int64_t assertion_lifetime = 3600;
constexpr int token_attempts = 3;


struct evp_pkey_deleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct evp_md_ctx_deleter {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};

std::string rs256_sign(std::string_view input, const std::string& pem, std::string& error) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  if (!bio) {
    error = "out of memory";
    return {};
  }
  std::unique_ptr<EVP_PKEY, evp_pkey_deleter> key(PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr));
  BIO_free(bio);
  if (!key) {
    ERR_clear_error();
    error = "private_key is not a PEM private key";
    return {};
  }
  if (EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_RSA) {
    error = "private_key is not an RSA key (RS256 needs one)";
    return {};
  }
  std::unique_ptr<EVP_MD_CTX, evp_md_ctx_deleter> ctx(EVP_MD_CTX_new());
  std::size_t len = 0;
  const auto* data = reinterpret_cast<const unsigned char*>(input.data());
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &len, data, input.size()) != 1) {
    ERR_clear_error();
    error = "RS256 signing failed";
    return {};
  }
  std::string sig(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, data, input.size()) != 1) {
    ERR_clear_error();
    error = "RS256 signing failed";
    return {};
  }
  sig.resize(len);
  return sig;
}

// What the blocking part of a service-account refresh produces (read file, parse, sign).
struct signed_assertion {
  std::string assertion;
  std::string token_uri;
  std::string error;  ///< empty on success; names no secret
};

signed_assertion load_and_sign(const std::string& path) {
  signed_assertion out;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    out.error = std::string("cannot read: ") + std::strerror(errno);
    return out;
  }
  std::ostringstream text;
  text << in.rdbuf();
  std::string err;
  auto key = parse_service_account_key(text.str(), err);
  if (!key) {
    out.error = err;
    return out;
  }
  auto now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch());
  out.assertion = make_jwt_assertion(*key, now.count(), err);
  if (out.assertion.empty()) {
    out.error = err;
    return out;
  }
  out.token_uri = key->token_uri;
  return out;
}

store_error auth_error(error_kind kind, int status, std::string code, std::string message) {
  return store_error{kind, "", "FetchAccessToken", "", "", status, std::move(code), std::move(message), ""};
}

error_kind kind_for_status(int status) {
  if (status == 408 || status == 429 || status >= 500) return error_kind::retryable;
  return error_kind::permission;  // invalid_grant, unauthorized_client, no service account...
}

http::request token_post(const http::endpoint& ep, std::span<const std::byte> body) {
  http::request req;
  req.method = "POST";
  req.target = ep.base_path.empty() ? "/" : ep.base_path;
  req.headers.emplace_back("content-type", "application/x-www-form-urlencoded");
  req.headers.emplace_back("accept", "application/json");
  req.body = body;
  return req;
}

http::request metadata_get() {
  http::request req;
  req.method = "GET";
  req.target = "/computeMetadata/v1/instance/service-accounts/default/token";
  req.headers.emplace_back("metadata-flavor", "Google");
  return req;
}

config::backoff_config token_backoff() { return config::backoff_config{200ms, 2.0, 2000ms, 0.3}; }

std::string metadata_host_from_env() {
  const char* h = std::getenv("GCE_METADATA_HOST");
  if (h && *h) return h;
  return default_metadata_host;
}

}  // namespace

std::string base64url(std::string_view data) {
  std::string b = base64(std::span(reinterpret_cast<const unsigned char*>(data.data()), data.size()));
  while (!b.empty() && b.back() == '=') b.pop_back();
  for (auto& c : b) {
    if (c == '+') c = '-';
    else if (c == '/') c = '_';
  }
  return b;
}

std::string make_jwt_assertion(const service_account_key& key, std::int64_t unix_now, std::string& error) {
  json::object header;
  header["alg"] = "RS256";
  header["typ"] = "JWT";
  if (!key.private_key_id.empty()) header["kid"] = key.private_key_id;
  json::object claims;
  claims["iss"] = key.client_email;
  claims["scope"] = storage_scope;
  claims["aud"] = key.token_uri;
  claims["iat"] = unix_now;
  claims["exp"] = unix_now + assertion_lifetime;
  std::string signing_input = base64url(json::serialize(header)) + "." + base64url(json::serialize(claims));
  std::string sig = rs256_sign(signing_input, key.private_key, error);
  if (sig.empty()) return {};
  return signing_input + "." + base64url(sig);
}

enum class source_kind { service_account, metadata, static_token };

struct token_provider::impl {
  asio::any_io_executor executor;
  std::string store;  ///< for the request metrics
  config::gcs_store_config cfg;
  asio::thread_pool* blocking;
  source_kind kind;
  std::string source;
  std::string metadata_host;
  // A token from token_file is looked at again every few seconds, so a rotated Secret applies.
  config::secret_file_watch static_token;
  steady::time_point static_token_checked{};

  // The cached token.
  bool have = false;
  std::string token;
  steady::time_point refresh_at{};
  steady::time_point expires_at{};

  // One fetch at a time; the others wait for it and read its outcome.
  async::single_flight refresh;
  std::optional<store_error> last_failure;
  std::size_t fetched = 0;

  // One pooled client per token endpoint (token_uri may change with a rotated key).
  http::client_cache clients;

  impl(asio::any_io_executor ex, std::string store_name, const config::gcs_store_config& c, asio::thread_pool* pool)
      : executor(ex), store(std::move(store_name)), cfg(c), blocking(pool), static_token(c.token), refresh(ex), clients(ex) {
    if (cfg.credentials == config::gcs_credentials::metadata) {
      kind = source_kind::metadata;
      metadata_host = metadata_host_from_env();
      source = "metadata server " + metadata_host;
    } else if (cfg.credentials == config::gcs_credentials::token) {
      kind = source_kind::static_token;
      source = "static token (" + (cfg.token.origin().empty() ? std::string("unset") : cfg.token.origin()) + ")";
    } else {
      kind = source_kind::service_account;
      source = "service account key " + (cfg.service_account_file.empty() ? std::string("(no service_account_file)")
                                                                          : cfg.service_account_file);
    }
  }

  // A client for `url` (scheme://host[:port]/path), reused while the URL stays the same.
  // The store's ca_file/verify_tls apply only when the token endpoint is the storage host
  // (an emulator); Google's token endpoint is checked against the system trust store.
  http::client* client_for(const std::string& url, const http::endpoint& ep) {
    http::client_options opts;
    opts.max_connections = 2;
    opts.io_timeout = cfg.request_timeout;
    auto storage = http::parse_endpoint(cfg.endpoint.find("://") == std::string::npos ? "https://" + cfg.endpoint
                                                                                         : cfg.endpoint);
    if (storage && storage->host == ep.host) {
      opts.ca_file = cfg.ca_file;
      opts.verify_tls = cfg.verify_tls;
    }
    return &clients.get(url, ep, opts);
  }

  store_error failure(error_kind kind_, int status, std::string code, const std::string& detail) {
    return auth_error(kind_, status, std::move(code), source + ": " + detail);
  }

  // One token request with retries for transient failures.
  asio::awaitable<result<fetched_token>> request_token(http::client& client, const http::request& req,
                                                      const std::string& where) {
    const std::string none;
    request_identity who{store, "FetchAccessToken", none, none};
    retry_rules rules;
    rules.max_attempts = token_attempts;
    rules.backoff = token_backoff();
    std::optional<fetched_token> token;
    auto prepare = [&req] { return result<http::request>(req); };
    auto judge = [&](http::response& r) {
      verdict v;
      if (r.status == 200) {
        token = parse_token_response(r.body);
        if (!token)
          v.error = failure(error_kind::retryable, r.status, "BadTokenResponse", where + " answered without an access_token");
      } else {
        v.error = failure(kind_for_status(r.status), r.status, oauth_code(r), where + " refused: " + describe_refusal(r));
      }
      return v;
    };
    auto answer = co_await run_request(executor, client, who, rules, {}, prepare, judge);
    if (answer) co_return std::move(*token);
    if (answer.error().http_status == 0)  // no answer: say where from, as the answers do
      co_return failure(error_kind::retryable, 0, "TokenEndpointUnreachable", where + ": " + answer.error().message);
    co_return answer.error();
  }

  asio::awaitable<result<fetched_token>> fetch_service_account() {
    if (cfg.service_account_file.empty())
      co_return failure(error_kind::permission, 0, "CredentialsMissing", "service_account_file is not set");
    auto sign = [this]() { return load_and_sign(cfg.service_account_file); };
    signed_assertion sa;
    if (blocking) sa = co_await async::run_blocking(*blocking, sign);
    else sa = sign();
    if (!sa.error.empty()) co_return failure(error_kind::permission, 0, "InvalidServiceAccountKey", sa.error);
    auto ep = http::parse_endpoint(sa.token_uri);
    if (!ep) co_return failure(error_kind::permission, 0, "InvalidServiceAccountKey",
                               "token_uri " + sa.token_uri + " is not an http(s) URL");
    std::string form = "grant_type=" + http::percent_encode(jwt_bearer_grant) + "&assertion=" + http::percent_encode(sa.assertion);
    auto req = token_post(*ep, std::as_bytes(std::span(form)));
    auto* client = client_for(sa.token_uri, *ep);
    std::string where = "token endpoint " + sa.token_uri;
    co_return co_await request_token(*client, req, where);
  }

  asio::awaitable<result<fetched_token>> fetch_metadata() {
    std::string url = "http://" + metadata_host;
    auto ep = http::parse_endpoint(url);
    if (!ep) co_return failure(error_kind::permission, 0, "InvalidMetadataHost", "not a host[:port]");
    auto req = metadata_get();
    auto* client = client_for(url, *ep);
    std::string where = "token request";
    co_return co_await request_token(*client, req, where);
  }

  asio::awaitable<result<fetched_token>> fetch() {
    ++fetched;
    if (kind == source_kind::metadata) co_return co_await fetch_metadata();
    co_return co_await fetch_service_account();
  }

  asio::awaitable<result<std::string>> get() {
    if (kind == source_kind::static_token) {
      if (auto now = steady::now(); now - static_token_checked >= 2s) {
        static_token_checked = now;
        static_token.check_now();
      }
      auto current = static_token.value();
      if (current.empty()) co_return failure(error_kind::permission, 0, "CredentialsMissing", "the token is empty");
      co_return current.reveal();
    }
    for (;;) {
      auto now = steady::now();
      if (have && now < refresh_at) co_return token;
      if (refresh.in_flight()) {
        if (have && now < expires_at) co_return token;  // still good while another request refreshes
        bool landed = co_await refresh.wait_for_landing();
        if (landed && last_failure && !(have && steady::now() < expires_at)) co_return *last_failure;
        continue;
      }
      async::single_flight::flight guard(refresh);
      auto got = co_await fetch();
      auto fetched_at = steady::now();
      if (!got) {
        last_failure = got.error();
        if (have && fetched_at < expires_at) {
          log::warn("GCS access token refresh failed; using the current token until it expires",
                    {{"error", got.error().message}});
          co_return token;
        }
        co_return got.error();
      }
      last_failure.reset();
      auto lifetime = got->lifetime;
      auto margin = std::min<std::chrono::milliseconds>(std::chrono::minutes(5),
                                                        std::chrono::milliseconds(lifetime) / 4);
      token = std::move(got->value);
      have = true;
      expires_at = fetched_at + lifetime;
      refresh_at = expires_at - margin;
      log::debug("GCS access token fetched", {{"source", source}, {"expires_in_s", lifetime.count()}});
      co_return token;
    }
  }
};

token_provider::token_provider(asio::any_io_executor executor, std::string store, const config::gcs_store_config& cfg,
                               asio::thread_pool* blocking)
    : impl_(std::make_unique<impl>(executor, std::move(store), cfg, blocking)) {}
token_provider::~token_provider() = default;

asio::awaitable<result<std::string>> token_provider::token() { return impl_->get(); }

bool token_provider::invalidate(const std::string& refused) {
  if (impl_->kind == source_kind::static_token) {
    // Retrying helps only if the token file was rotated meanwhile.
    impl_->static_token_checked = {};
    return impl_->static_token.watched();
  }
  if (impl_->have && impl_->token == refused) impl_->have = false;
  return true;
}

const std::string& token_provider::source() const { return impl_->source; }
std::size_t token_provider::fetches() const { return impl_->fetched; }

}  // namespace archie::store::gcs
