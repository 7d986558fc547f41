#pragma once
// AWS credentials as the credential sources hand them out, and the parsers for the answers
// of the three remote sources. Pure functions, no I/O: the wire formats are those the AWS
// documentation gives (STS AssumeRoleWithWebIdentity's XML, the container credentials
// endpoint's JSON, IMDS's iam/security-credentials JSON). Error texts never quote a key,
// secret or token.
#include "store/s3/sigv4.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace archie::store::s3 {

struct aws_credentials {
  credentials keys;  ///< what SigV4 signs with
  /// When they stop working; nullopt for long-lived keys, which are never refreshed on time.
  std::optional<std::chrono::system_clock::time_point> expiration;
};

/// The parse of a remote answer: credentials or a reason (plus the service's error code when
/// the answer was an error document).
struct credentials_answer {
  std::optional<aws_credentials> creds;
  std::string error_code;  ///< e.g. "InvalidIdentityToken", "ExpiredTokenException"; may be empty
  std::string error;       ///< empty when creds is set
};

/// "2026-11-29T13:00:00Z", with optional fractional seconds and a "Z" or "+00:00" suffix
/// (ISO 8601 as STS, ECS/EKS and IMDS write it). nullopt for anything else.
std::optional<std::chrono::system_clock::time_point> parse_iso8601_utc(std::string_view text);

/// AssumeRoleWithWebIdentityResponse or AssumeRoleResponse (200), or ErrorResponse
/// (4xx/5xx), from STS.
credentials_answer parse_sts_answer(std::string_view xml);

/// The JSON object served by the ECS / EKS Pod Identity container endpoint and by IMDS's
/// /latest/meta-data/iam/security-credentials/ROLE: AccessKeyId, SecretAccessKey, Token,
/// Expiration (IMDS adds Code, which must be "Success" when present).
credentials_answer parse_credentials_json(std::string_view json);

/// Whether AWS_CONTAINER_CREDENTIALS_FULL_URI may be asked (and sent the authorization token):
/// https anywhere; plain http only to loopback (127.0.0.0/8, ::1, localhost), the ECS agent
/// (169.254.170.2) and EKS Pod Identity (169.254.170.23, fd00:ec2::23), as the AWS SDKs allow.
/// `host` as http::endpoint gives it (IPv6 without brackets).
bool container_endpoint_allowed(bool tls, std::string_view host);

}  // namespace archie::store::s3
