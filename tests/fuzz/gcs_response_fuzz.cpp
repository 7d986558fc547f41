// GCS JSON API answers (src/store/gcs/gcs_response.cpp), from one fuzz input in the format of
// fuzz_support.hpp (status line, headers, blank line, body): download headers, the body as an
// object resource, listings (plain and versions=true), a bucket's versioning, an error, a
// resumable-session answer and Retry-After. The MD5 hex conversion is checked against a
// reference base64 decoder written differently.
#include "store/gcs/gcs_response.hpp"
#include "tests/fuzz/fuzz_support.hpp"

#include <optional>

using namespace archie::store::gcs;

namespace {

// Whole quads of the RFC 4648 alphabet, at most two '=' at the very end.
std::optional<std::string> reference_base64_hex(std::string_view s) {
  static constexpr std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  static constexpr char hex[] = "0123456789abcdef";
  if (s.empty() || s.size() % 4 != 0) return std::nullopt;
  std::size_t pad = 0;
  if (s.back() == '=') ++pad;
  if (s.size() >= 2 && s[s.size() - 2] == '=') ++pad;
  if (pad == 1 && s[s.size() - 2] == '=') return std::nullopt;
  std::string bytes;
  std::uint32_t acc = 0;
  int bits = 0;
  for (std::size_t i = 0; i < s.size() - pad; ++i) {
    auto v = alphabet.find(s[i]);
    if (v == std::string_view::npos) return std::nullopt;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      bytes += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  std::string out;
  for (unsigned char c : bytes) {
    out += hex[c >> 4];
    out += hex[c & 15];
  }
  return out;
}

void check_hex(std::string_view b64) {
  auto hex = base64_to_hex(b64);
  auto expected = reference_base64_hex(b64);
  FUZZ_REQUIRE(hex == expected.value_or(""));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto r = archie::fuzz::response_from_bytes(archie::fuzz::as_text(data, size));

  auto m = object_from_headers(r);
  if (!m.md5_base64.empty()) {
    check_hex(m.md5_base64);
    FUZZ_REQUIRE(m.info.etag == base64_to_hex(m.md5_base64));
  }
  check_hex(r.body);

  if (auto o = parse_object(r.body); o && !o->md5_base64.empty())
    FUZZ_REQUIRE(o->info.etag == base64_to_hex(o->md5_base64));
  (void)parse_list_page(r.body);
  if (auto g = parse_generation_page(r.body))
    for (const auto& gen : g->generations)
      if (!gen.meta.md5_base64.empty()) FUZZ_REQUIRE(gen.meta.info.etag == base64_to_hex(gen.meta.md5_base64));
  (void)parse_versioning_enabled(r.body);
  (void)parse_error_body(r.body);

  resumable_session s;
  s.total = 1 << 20;
  auto complaint = apply_session_answer(s, r);
  FUZZ_REQUIRE(s.persisted <= s.total);
  if (complaint.empty() && r.status == 308) FUZZ_REQUIRE(!s.result);

  auto wait = retry_after_seconds(r, 30);
  FUZZ_REQUIRE(wait >= 0 && wait <= 30);
  return 0;
}
