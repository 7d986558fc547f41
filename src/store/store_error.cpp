#include "store/store_error.hpp"

#include <stdexcept>

namespace archie::store {

const char* to_string(error_kind k) {
  switch (k) {
    case error_kind::not_found: return "not_found";
    case error_kind::permission: return "permission";
    case error_kind::precondition_failed: return "precondition_failed";
    case error_kind::retryable: return "retryable";
    case error_kind::permanent: return "permanent";
  }
  return "permanent";
}

std::string store_error::describe() const {
  std::string s = "store " + store + ": " + operation;
  if (!bucket.empty()) s += " " + bucket + (key.empty() ? "" : "/" + key);
  s += ": ";
  if (http_status) s += "HTTP " + std::to_string(http_status) + " ";
  s += code.empty() ? std::string(to_string(kind)) : code;
  if (!message.empty()) s += ": " + message;
  if (!request_id.empty()) s += " (request id " + request_id + ")";
  return s;
}

void throw_exception_from_error(const store_error& e, const boost::source_location&) {
  throw std::runtime_error(e.describe());
}

}  // namespace archie::store
