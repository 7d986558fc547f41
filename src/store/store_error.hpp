#pragma once
// The one error model for every store (S3, GCS, fs). It is classified where it is born, so
// decisions above (retry, nak, term) read `kind`, never parse messages.
#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>

#include <string>

namespace archie::store {

enum class error_kind {
  not_found,            ///< key, bucket or upload does not exist
  permission,           ///< credentials rejected or access denied: needs an operator
  precondition_failed,  ///< If-Match / generation preconditions not met
  retryable,            ///< 5xx, throttling, timeouts, connection resets
  permanent,            ///< anything else the server refused: retrying will not help
};

const char* to_string(error_kind k);

struct store_error {
  error_kind kind = error_kind::permanent;
  std::string store;      ///< configured store name
  std::string operation;  ///< "GetObject", "UploadPart"...
  std::string bucket;
  std::string key;
  int http_status = 0;    ///< 0 when no response arrived
  std::string code;       ///< service code: "NoSuchKey", "SignatureDoesNotMatch", "connection_reset"
  std::string message;    ///< service or transport message (never contains secrets)
  std::string request_id;

  /// "store backup: PutObject bucket/key: HTTP 403 SignatureDoesNotMatch: ... (request id X)"
  std::string describe() const;
  bool retryable() const { return kind == error_kind::retryable; }
};

/// A value or a store_error: the data path returns these instead of throwing.
template <class T>
using result = boost::system::result<T, store_error>;

/// The return type of every store operation.
template <class T>
using async_result = boost::asio::awaitable<result<T>>;

/// What `result::value()` throws when it holds an error (Boost.System finds it by ADL).
[[noreturn]] void throw_exception_from_error(const store_error& e, const boost::source_location& where);

/// store_error::code of a source object encrypted with a key its owner keeps (S3 SSE-C):
/// unreadable without that key, so it is refused for good with this code rather than retried.
inline constexpr const char* customer_key_code = "EncryptedWithCustomerKey";

struct done {};  ///< result<done>: success without a value

}  // namespace archie::store
