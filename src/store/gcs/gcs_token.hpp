#pragma once
// Reading the OAuth2 side of GCS: service-account key files and the answers of the token
// endpoint and the metadata server. These are bytes from a file an operator mounted and from
// servers archie does not control, so each function is total: any input gives a value or a
// refusal, never a crash or an exception. No I/O here; gcs_auth fetches and caches, and the
// unit tests and fuzz targets (tests/fuzz) call these directly.
#include "http/client.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace archie::store::gcs {

inline constexpr const char* default_token_uri = "https://oauth2.googleapis.com/token";

/// Google's access tokens live an hour, 12 hours at most with an extended lifetime. A longer
/// stated lifetime (or an absurd one such as 3e99) is cut to a day: the token is then only
/// refreshed early, and steady_clock arithmetic (int64 nanoseconds) stays far from overflow.
inline constexpr std::chrono::seconds max_token_lifetime = std::chrono::hours(24);
/// The lifetime assumed when an answer does not state one.
inline constexpr std::chrono::seconds unstated_token_lifetime = std::chrono::minutes(5);

/// The fields of a service-account JSON key that archie uses.
struct service_account_key {
  std::string client_email;
  std::string private_key;     ///< PEM
  std::string private_key_id;  ///< becomes the JWT's "kid"
  std::string token_uri;       ///< default_token_uri when the key has none
};

/// Parses a key file's text; nullopt with `error` set ("not JSON", "no client_email", ...; the
/// message never quotes the key).
std::optional<service_account_key> parse_service_account_key(std::string_view json_text, std::string& error);

struct fetched_token {
  std::string value;
  std::chrono::seconds lifetime{0};  ///< always within [1 s, max_token_lifetime]
};

/// {"access_token": "...", "expires_in": 3599, "token_type": "Bearer"}: the token endpoint's
/// and the metadata server's answer alike. expires_in may be an integer, a float or a decimal
/// string; nullopt when the body is not a JSON object or has no access_token.
std::optional<fetched_token> parse_token_response(std::string_view body);

/// "HTTP 400 invalid_grant: Invalid JWT Signature." from an OAuth2 error body (or the first
/// line, at most 200 bytes, of a plain-text one, as the metadata server sends).
std::string describe_refusal(const http::response& r);
/// The OAuth2 "error" code of a refusal ("invalid_grant"), else "HTTP<status>".
std::string oauth_code(const http::response& r);

}  // namespace archie::store::gcs
