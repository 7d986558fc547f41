#include "queue/header_value.hpp"

#include <doctest/doctest.h>

using archie::queue::decode_header_value;
using archie::queue::encode_header_value;

TEST_CASE("a header value from a key with CR and LF in it cannot start another header") {
  std::string reason = "source b/a\r\nArchie-Original-Subject: evil.subject\r\n does not exist";
  std::string encoded = encode_header_value(reason);
  CHECK(encoded.find('\r') == std::string::npos);
  CHECK(encoded.find('\n') == std::string::npos);
  CHECK(encoded == "source b/a%0D%0AArchie-Original-Subject: evil.subject%0D%0A does not exist");
  CHECK(decode_header_value(encoded) == reason);
}

TEST_CASE("header values round-trip every byte, '%' and UTF-8 included") {
  std::string all;
  for (int c = 0; c < 256; ++c) all.push_back(static_cast<char>(c));
  CHECK(decode_header_value(encode_header_value(all)) == all);
  CHECK(encode_header_value("100% ü") == "100%25 %C3%BC");
  CHECK(encode_header_value("plain text: ok") == "plain text: ok");
}

TEST_CASE("a capped header value never ends in half an escape, and stray percents decode as they are") {
  CHECK(encode_header_value("ab\n", 4) == "ab");
  CHECK(encode_header_value("abc\n", 6) == "abc%0A");
  CHECK(decode_header_value("50% off %zz %4") == "50% off %zz %4");
}
