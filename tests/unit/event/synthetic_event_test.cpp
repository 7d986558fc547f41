#include "event/synthetic_event.hpp"

#include "event/form_url.hpp"
#include "event/minio_event.hpp"

#include <doctest/doctest.h>

using namespace archie::event;

TEST_CASE("form_url_encode is Go's QueryEscape and form_url_decode undoes it for any bytes") {
  CHECK(form_url_encode("a b/c+d~e_f.g-h") == "a+b%2Fc%2Bd~e_f.g-h");
  CHECK(form_url_encode("\xc3\xa9") == "%C3%A9");
  std::string all;
  for (int c = 0; c < 256; ++c) all += static_cast<char>(c);
  bool ok = false;
  CHECK(form_url_decode(form_url_encode(all), ok) == all);
  CHECK(ok);
}

TEST_CASE("a synthetic put event decodes as a copy of exactly that key, marked as archie's") {
  for (std::string key : {"plain.txt", "dir/with space/+plus%percent", "unicode/\xc3\xa9t\xc3\xa9", "a&b=c?d#e"}) {
    std::string payload = synthetic_put_event({"photos", key, 1234, "5d41402abc4b2a76b9719d911017c592"});
    auto decoded = decode_minio_event(payload);
    REQUIRE(decoded.has_value());
    const auto& events = *decoded;
    REQUIRE(events.size() == 1);
    CHECK(events[0].action == event_action::copy);
    CHECK(events[0].event_name == "s3:ObjectCreated:Put");
    CHECK(events[0].bucket == "photos");
    CHECK(events[0].key == key);
    CHECK(events[0].size == 1234);
    CHECK(events[0].etag == "5d41402abc4b2a76b9719d911017c592");
    CHECK(payload.find("\"principalId\":\"archie-backfill\"") != std::string::npos);
    CHECK(payload.find("\"userAgent\":\"archie-backfill\"") != std::string::npos);
  }
}

TEST_CASE("a synthetic delete event decodes as a removal with no size, and a zero size is omitted as MinIO does") {
  auto decoded = decode_minio_event(synthetic_delete_event({"b", "gone/key", 0, ""}));
  REQUIRE(decoded.has_value());
  CHECK((*decoded)[0].action == event_action::remove);
  CHECK(synthetic_put_event({"b", "empty", 0, "d41d8cd98f00b204e9800998ecf8427e"}).find("\"size\"") ==
        std::string::npos);
}
