// Form/percent decoding of event keys (src/event/form_url.cpp), checked against a reference
// decoder written differently (strtoul on each escape) and by round trip through Go's
// url.QueryEscape, which is what MinIO applies to object names.
#include "event/form_url.hpp"
#include "tests/fuzz/fuzz_support.hpp"

#include <cctype>
#include <cstdlib>
#include <optional>

namespace {

std::optional<std::string> reference_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] != '%') {
      out += s[i];
    } else {
      if (i + 2 >= s.size()) return std::nullopt;  // needs two characters after '%'
      const char hex[3] = {s[i + 1], s[i + 2], '\0'};
      if (!std::isxdigit(static_cast<unsigned char>(hex[0])) || !std::isxdigit(static_cast<unsigned char>(hex[1])))
        return std::nullopt;
      out += static_cast<char>(std::strtoul(hex, nullptr, 16));
      i += 2;
    }
  }
  return out;
}

// Go's url.QueryEscape: unreserved bytes stay, space becomes '+', the rest %XX.
std::string query_escape(std::string_view s) {
  static constexpr char digits[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else if (c == ' ') {
      out += '+';
    } else {
      out += '%';
      out += digits[c >> 4];
      out += digits[c & 15];
    }
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto text = archie::fuzz::as_text(data, size);
  bool ok = false;
  std::string decoded = archie::event::form_url_decode(text, ok);
  auto expected = reference_decode(text);
  FUZZ_REQUIRE(ok == expected.has_value());
  if (ok) FUZZ_REQUIRE(decoded == *expected);
  else FUZZ_REQUIRE(decoded.empty());

  bool round_trip_ok = false;
  FUZZ_REQUIRE(archie::event::form_url_decode(query_escape(text), round_trip_ok) == text);
  FUZZ_REQUIRE(round_trip_ok);
  return 0;
}
