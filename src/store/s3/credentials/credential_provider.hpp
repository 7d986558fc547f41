#pragma once
// The credentials an S3 store signs with, from the source its `credentials` setting names
// (config::s3_credentials; CONFIGURE.md "S3 credentials"):
//
//   static        the store's access_key_id / secret_access_key / session_token; keys read from
//                 *_file are re-read when the file changes (a rotated Kubernetes Secret).
//   env           AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN.
//   profile       static keys of a profile (`profile`, else AWS_PROFILE, else "default") in
//                 AWS_SHARED_CREDENTIALS_FILE / AWS_CONFIG_FILE (default ~/.aws/credentials and
//                 ~/.aws/config); the files are re-read when they change.
//   web_identity  STS AssumeRoleWithWebIdentity with AWS_ROLE_ARN and the token in
//                 AWS_WEB_IDENTITY_TOKEN_FILE, read again on every refresh (IRSA rotates it);
//                 session name AWS_ROLE_SESSION_NAME.
//   container     GET AWS_CONTAINER_CREDENTIALS_FULL_URI (or 169.254.170.2 +
//                 AWS_CONTAINER_CREDENTIALS_RELATIVE_URI) with the Authorization token of
//                 AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE (re-read) or _TOKEN (EKS Pod Identity, ECS).
//   imds          IMDSv2: PUT a session token, then GET the role name and its credentials
//                 (AWS_EC2_METADATA_SERVICE_ENDPOINT overrides http://169.254.169.254).
//   chain         the first of env, web_identity, profile, container, imds whose settings are
//                 present, decided again at every refresh (the AWS SDKs' order).
//
// Temporary credentials are cached for all requests of the store and refreshed ahead of
// expiry with jitter (refresh_schedule.hpp), one fetch at a time; after the server refuses
// them (ExpiredToken, InvalidAccessKeyId, InvalidToken) the caller invalidates them and
// retries once. Nothing here logs or returns a key, secret or token in a message.
#include "config/config.hpp"
#include "store/s3/credentials/aws_credentials.hpp"
#include "store/store_error.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <cstddef>
#include <memory>
#include <string>

namespace archie::store::s3 {

/// The TOML name of a credentials mode ("static", "web_identity", ...).
const char* credentials_mode_name(config::s3_credentials mode);

class credential_provider {
 public:
  credential_provider(boost::asio::any_io_executor executor, std::string store_name,
                      const config::s3_store_config& cfg);
  ~credential_provider();
  credential_provider(const credential_provider&) = delete;
  credential_provider& operator=(const credential_provider&) = delete;

  /// Credentials to sign the next request with. The error (operation "FetchCredentials")
  /// is retryable when the remote source failed transiently, `permission` when the source
  /// is missing or refused.
  boost::asio::awaitable<result<credentials>> get();

  /// After the server refused `refused` as expired or unknown: drop them so the next get()
  /// fetches (or re-reads) afresh. False when nothing newer can come (fixed inline keys).
  /// `certain` is false for a bare 403 (a HEAD has no error code): that may equally be a
  /// missing permission, so such a guess is honoured at most once per 10 s, which bounds
  /// the extra fetches a misconfigured permission can cause.
  bool invalidate(const credentials& refused, bool certain);

  /// "static", "chain -> web_identity", ...: safe to log and to show in check-config.
  std::string describe() const;
  /// Fetches from a remote source since start (tests use it to prove caching and refresh).
  std::size_t fetches() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace archie::store::s3
