#pragma once
// AWS Signature Version 4 for the Authorization header: pure functions, no I/O, no clock.
// The time is a parameter so tests pin it and a retry can re-sign with a fresh one.
// Nothing here logs, and no returned string carries the secret key (only values derived
// from it through HMAC).
#include <array>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace archie::store::s3 {

/// Percent-encodes every byte except RFC 3986 unreserved characters (A-Z a-z 0-9 - _ . ~), as
/// %XX with upper-case hex. '/' stays literal when encode_slash is false (object paths).
std::string uri_encode(std::string_view s, bool encode_slash);

/// Lower-case hex SHA-256 of data.
std::string sha256_hex(std::string_view data);

/// SHA-256 fed piece by piece, so a payload hash never needs the whole body in memory.
class sha256_hasher {
 public:
  sha256_hasher();
  ~sha256_hasher();
  sha256_hasher(sha256_hasher&&) noexcept;
  sha256_hasher& operator=(sha256_hasher&&) noexcept;
  sha256_hasher(const sha256_hasher&) = delete;
  sha256_hasher& operator=(const sha256_hasher&) = delete;

  void update(const void* data, std::size_t size);
  void update(std::string_view data) { update(data.data(), data.size()); }
  /// Lower-case hex digest of everything fed so far; the hasher then starts over, empty.
  std::string hex_digest();

 private:
  struct state;
  std::unique_ptr<state> state_;
};

struct credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  ///< empty: long-lived keys, no x-amz-security-token
};

/// Payload hash values with a meaning of their own (sent as x-amz-content-sha256).
inline constexpr std::string_view unsigned_payload = "UNSIGNED-PAYLOAD";
inline constexpr std::string_view empty_payload_sha256 =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

struct request_to_sign {
  std::string_view method{};
  /// S3 rules (the default): the raw, unencoded path, e.g. "/bucket/my key+%.txt". Every byte
  /// but '/' and the unreserved set is encoded once; '//' and '.'/'..' segments are kept, since
  /// S3 treats them as part of the key.
  /// Other services (s3_path_rules = false): the path as sent on the wire (already encoded
  /// once). It is normalised (dot segments resolved, '//' collapsed) and encoded again, the
  /// "double encoding" of the SigV4 spec and of the AWS test suite.
  std::string path{};
  /// Raw, unencoded name/value pairs; empty values and repeated names are allowed.
  std::vector<std::pair<std::string, std::string>> query{};
  /// Must include host; names in any case; a repeated name is signed as one comma-joined
  /// header. Caller copies of the headers the signer sets (x-amz-date, authorization, and
  /// x-amz-content-sha256 / x-amz-security-token when it sets those) are replaced by the
  /// signer's own, never signed twice.
  std::vector<std::pair<std::string, std::string>> headers{};
  /// Hex SHA-256 of the body, unsigned_payload, or a "STREAMING-..." marker.
  std::string payload_hash{};
  bool s3_path_rules = true;
  /// S3 requires x-amz-content-sha256 on every request; most other services do not know it
  /// (the generic AWS test suite signs without it).
  bool content_sha256_header = true;
};

struct signing_result {
  std::string canonical_request;
  std::string string_to_sign;
  std::string signature;      ///< 64 lower-case hex characters
  std::string authorization;  ///< the Authorization header value
  std::string amz_date;       ///< the x-amz-date value, yyyymmddThhmmssZ
  /// Headers to set on the outgoing request, exactly as signed: x-amz-date,
  /// x-amz-content-sha256 (if enabled), x-amz-security-token (with a session token),
  /// Authorization.
  std::vector<std::pair<std::string, std::string>> headers_to_add;
};

using signing_key = std::array<unsigned char, 32>;

/// kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request").
/// Depends only on the UTC day, so a caller may compute it once a day and reuse it.
/// date is yyyymmdd.
signing_key derive_signing_key(std::string_view secret_access_key, std::string_view date,
                               std::string_view region, std::string_view service);

/// Signs with the given credentials at time now (whole seconds, UTC).
/// Throws std::invalid_argument when the request has no host header.
signing_result sign_v4(const request_to_sign& request, const credentials& creds, std::string_view region,
                       std::string_view service, std::chrono::system_clock::time_point now);

/// The same, with a key from derive_signing_key for now's UTC day (the per-day cache path).
/// The secret is not needed here; creds.secret_access_key is ignored.
signing_result sign_v4(const request_to_sign& request, const credentials& creds, const signing_key& key,
                       std::string_view region, std::string_view service,
                       std::chrono::system_clock::time_point now);

}  // namespace archie::store::s3
