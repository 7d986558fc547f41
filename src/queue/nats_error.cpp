#include "queue/nats_error.hpp"

#include "config/url_redaction.hpp"

namespace archie::queue {

std::string nats_error_text(std::string_view operation, natsStatus status, jsErrCode js_code) {
  std::string text(operation);
  text += ": ";
  text += natsStatus_GetText(status);
  // nats_GetLastError is per thread: read it on the thread that made the failing call.
  natsStatus last_status = NATS_OK;
  if (const char* detail = nats_GetLastError(&last_status); detail && *detail && last_status == status) {
    text += " (";
    text += config::redact_userinfo_in_text(detail);  // nats.c names the server URL, userinfo included
    text += ")";
  }
  if (js_code != 0) text += " [jetstream error " + std::to_string(static_cast<int>(js_code)) + "]";
  return text;
}

}  // namespace archie::queue
