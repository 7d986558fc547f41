#pragma once
// What the fuzz targets share: a property check that ends the run as a finding, and the
// reading of fuzz bytes as an HTTP answer for the parsers that take an http::response.
#include "http/client.hpp"

#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

/// Aborts with the broken property: libFuzzer saves the input as a crash artifact.
#define FUZZ_REQUIRE(cond)                                                              \
  do {                                                                                  \
    if (!(cond)) {                                                                      \
      std::fprintf(stderr, "property failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                                     \
    }                                                                                   \
  } while (0)

namespace archie::fuzz {

inline std::string_view as_text(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

/// Reads "<status>\n<name>: <value>\n...\n\n<body>" (CRLF accepted) as the client would hand
/// it over: names lower-cased, one blank after the colon dropped, lines without a colon
/// ignored, the status the leading digits of the first line (0 when none). Seeds stay
/// readable this way, and the fuzzer mutates headers and body alike.
inline http::response response_from_bytes(std::string_view in) {
  http::response r;
  auto next_line = [&in]() {
    auto nl = in.find('\n');
    std::string_view line = in.substr(0, nl);
    in = nl == std::string_view::npos ? std::string_view{} : in.substr(nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    return line;
  };
  std::string_view status = next_line();
  for (char c : status) {
    if (c < '0' || c > '9' || r.status > 99'999) break;
    r.status = r.status * 10 + (c - '0');
  }
  while (!in.empty()) {
    std::string_view line = next_line();
    if (line.empty()) break;
    auto colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string name(line.substr(0, colon));
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string_view value = line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    r.headers.emplace_back(std::move(name), std::string(value));
  }
  r.body = std::string(in);
  return r;
}

}  // namespace archie::fuzz
