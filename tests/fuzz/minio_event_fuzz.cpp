// MinIO notification payloads as they arrive from the stream (src/event/minio_event.cpp).
// Beyond surviving any bytes, the decoder must keep minio_event.hpp's promises: error codes
// from the closed set, reasons that are one line of printable ASCII (they go to logs and
// dead-letter headers), and, when the envelope has a Key, every record naming that object.
#include "event/minio_event.hpp"
#include "tests/fuzz/fuzz_support.hpp"

#include <boost/json/parse.hpp>

#include <algorithm>

namespace ev = archie::event;
namespace json = boost::json;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto payload = archie::fuzz::as_text(data, size);
  auto result = ev::decode_minio_event(payload);

  if (result.has_error()) {
    const ev::decode_error error = result.error();
    const ev::decode_error* err = &error;
    FUZZ_REQUIRE(std::find(ev::decode_error_codes.begin(), ev::decode_error_codes.end(), err->code) !=
                 ev::decode_error_codes.end());
    FUZZ_REQUIRE(!err->reason.empty());
    FUZZ_REQUIRE(std::all_of(err->reason.begin(), err->reason.end(), [](char c) { return c >= 0x20 && c < 0x7f; }));
    return 0;
  }

  const auto& events = *result;
  FUZZ_REQUIRE(!events.empty());
  // The envelope-key check, restated: a decoded record is "<bucket>/<decoded key>" == Key.
  boost::system::error_code ec;
  const json::value doc = json::parse(payload, ec);
  FUZZ_REQUIRE(!ec && doc.is_object());
  const json::value* key = doc.as_object().if_contains("Key");
  const json::string* envelope_key = key ? key->if_string() : nullptr;
  for (const auto& e : events) {
    FUZZ_REQUIRE(e.event_name.rfind("s3:", 0) == 0);
    FUZZ_REQUIRE(e.has_size || e.size == 0);
    if (e.action == ev::event_action::skip) {
      FUZZ_REQUIRE(!e.skip_reason.empty());
    } else {
      FUZZ_REQUIRE(e.skip_reason.empty());
      FUZZ_REQUIRE(!e.bucket.empty() && !e.key.empty());
    }
    if (envelope_key && !e.key.empty()) FUZZ_REQUIRE(std::string_view(*envelope_key) == e.bucket + "/" + e.key);
  }
  return 0;
}
