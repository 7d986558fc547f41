#pragma once
// The one error model for every store (S3, GCS, fs). It is classified where it is born, so
// decisions above (retry, nak, term) read `kind`, never parse messages.
#include <string>
#include <utility>
#include <variant>

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

/// A value or a store_error; the data path returns these instead of throwing.
template <class T>
class result {
 public:
  result(T value) : v_(std::move(value)) {}
  result(store_error e) : v_(std::move(e)) {}
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() { return std::get<0>(v_); }
  const T& value() const { return std::get<0>(v_); }
  T* operator->() { return &value(); }
  const store_error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, store_error> v_;
};

struct done {};  ///< result<done>: success without a value

}  // namespace archie::store
