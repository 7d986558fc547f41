#pragma once
// OAuth2 access tokens for Google Cloud Storage, from one of three sources
// (gcs_store_config::credentials):
//
//   service_account  the JSON key in service_account_file: an RS256 JWT assertion signed with
//                    its private_key is exchanged at its token_uri (jwt-bearer grant). The file
//                    is read again on every refresh, so a rotated key (a re-mounted Secret) is
//                    picked up without a restart.
//   metadata         the GCE/GKE metadata server (Workload Identity); the host is
//                    metadata.google.internal unless GCE_METADATA_HOST names another, as in
//                    Google's own libraries.
//   token            a fixed bearer token (the `token` secret); never refreshed.
//
// Tokens are cached and refreshed before they expire (min(5 min, a quarter of the lifetime)
// ahead), one fetch at a time however many requests are waiting. After a 401 the caller
// invalidates the refused token and retries once. Errors name the source (key file path,
// metadata host, "static token (<origin>)"), never a token, key or assertion.
#include "config/config.hpp"
#include "store/gcs/gcs_token.hpp"
#include "store/store_error.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace archie::store::gcs {

/// The scope archie asks for: read and write objects, nothing else.
inline constexpr const char* storage_scope = "https://www.googleapis.com/auth/devstorage.read_write";
inline constexpr const char* default_metadata_host = "metadata.google.internal";

/// The signed JWT-bearer assertion: iss=client_email, scope=storage_scope, aud=token_uri,
/// iat=now, exp=now+3600, RS256 over the key's private_key. Empty with `error` set on failure.
std::string make_jwt_assertion(const service_account_key& key, std::int64_t unix_now, std::string& error);

/// base64url without padding (RFC 7515).
std::string base64url(std::string_view data);

class token_provider {
 public:
  /// `blocking` (optional) runs the key file read and the RSA signature off the I/O thread.
  /// `store` names the token requests in the request metrics.
  token_provider(boost::asio::any_io_executor executor, std::string store, const config::gcs_store_config& cfg,
                 boost::asio::thread_pool* blocking);
  ~token_provider();
  token_provider(const token_provider&) = delete;
  token_provider& operator=(const token_provider&) = delete;

  /// A bearer token valid for a while yet. The error (operation "FetchAccessToken") is
  /// retryable when the token endpoint or metadata server failed transiently, and
  /// `permission` when the credentials themselves are missing or refused.
  boost::asio::awaitable<result<std::string>> token();

  /// After a 401: forget `refused` so the next token() fetches a fresh one. Returns false
  /// when the source cannot refresh (a static token): retrying is then pointless.
  bool invalidate(const std::string& refused);

  /// "service account key /path/key.json", "metadata server metadata.google.internal",
  /// "static token (env GCS_TOKEN)": safe to log.
  const std::string& source() const;
  /// Tokens fetched since start (tests use it to prove caching and refresh).
  std::size_t fetches() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace archie::store::gcs
