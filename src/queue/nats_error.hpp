#pragma once
// Turns a nats.c status into an error text that carries the library's detail and, for
// JetStream API failures, the server's error code.
#include <nats/nats.h>

#include <stdexcept>
#include <string>

namespace archie::queue {

/// "<operation>: <status text> (<last error detail>) [jetstream error <code>]"
std::string nats_error_text(std::string_view operation, natsStatus status, jsErrCode js_code = static_cast<jsErrCode>(0));

class nats_error : public std::runtime_error {
 public:
  nats_error(std::string_view operation, natsStatus status, jsErrCode js_code = static_cast<jsErrCode>(0))
      : std::runtime_error(nats_error_text(operation, status, js_code)), status_(status), js_code_(js_code) {}
  natsStatus status() const { return status_; }
  jsErrCode js_code() const { return js_code_; }

 private:
  natsStatus status_;
  jsErrCode js_code_;
};

}  // namespace archie::queue
