// Signs requests read as JSON lines on stdin and prints one JSON line per request, so another
// SigV4 implementation (botocore, in tests/integration/test_sigv4_botocore.py) can be compared
// with archie's case by case.
//
// Input object: method, path, query [[k, v]...], headers [[k, v]...], payload_hash,
// access_key, secret_key, session_token, region, service, time (unix seconds); optional:
// payload_hex (the body as hex; hashed here with sha256_hasher when payload_hash is empty),
// s3_path_rules and content_sha256_header (booleans, default true).
// Output object: canonical_request, string_to_sign, signature, authorization; or error.
#include "store/s3/sigv4.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace json = boost::json;
namespace s3 = archie::store::s3;

namespace {

std::string str(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->get_string()) : std::string{};
}

bool flag(const json::object& o, std::string_view key, bool fallback) {
  const json::value* v = o.if_contains(key);
  return v && v->is_bool() ? v->get_bool() : fallback;
}

std::vector<std::pair<std::string, std::string>> pairs(const json::object& o, std::string_view key) {
  std::vector<std::pair<std::string, std::string>> out;
  const json::value* v = o.if_contains(key);
  if (!v) return out;
  for (const json::value& item : v->as_array()) {
    const json::array& kv = item.as_array();
    out.emplace_back(std::string(kv.at(0).as_string()), std::string(kv.at(1).as_string()));
  }
  return out;
}

std::string unhex(std::string_view hex) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    throw std::invalid_argument("payload_hex is not hex");
  };
  if (hex.size() % 2) throw std::invalid_argument("payload_hex has an odd length");
  std::string out;
  for (std::size_t i = 0; i < hex.size(); i += 2)
    out.push_back(static_cast<char>(nibble(hex[i]) * 16 + nibble(hex[i + 1])));
  return out;
}

json::object sign_one(const json::object& in) {
  std::string method = str(in, "method");
  s3::request_to_sign r;
  r.method = method;
  r.path = str(in, "path");
  r.query = pairs(in, "query");
  r.headers = pairs(in, "headers");
  r.payload_hash = str(in, "payload_hash");
  r.s3_path_rules = flag(in, "s3_path_rules", true);
  r.content_sha256_header = flag(in, "content_sha256_header", true);
  if (r.payload_hash.empty()) {
    // Fed in uneven pieces so the incremental hasher, not just the one-shot, is compared.
    std::string body = unhex(str(in, "payload_hex"));
    s3::sha256_hasher h;
    std::size_t pos = 0;
    for (std::size_t step = 1; pos < body.size(); step = step * 3 + 1) {
      std::size_t n = std::min(step, body.size() - pos);
      h.update(body.data() + pos, n);
      pos += n;
    }
    r.payload_hash = h.hex_digest();
  }
  s3::credentials creds{str(in, "access_key"), str(in, "secret_key"), str(in, "session_token")};
  auto now = std::chrono::system_clock::time_point(std::chrono::seconds(in.at("time").to_number<std::int64_t>()));

  auto res = s3::sign_v4(r, creds, str(in, "region"), str(in, "service"), now);
  return {{"canonical_request", res.canonical_request},
          {"string_to_sign", res.string_to_sign},
          {"signature", res.signature},
          {"authorization", res.authorization}};
}

}  // namespace

int main() {
  std::ios::sync_with_stdio(false);
  std::string line;
  int failures = 0;
  while (std::getline(std::cin, line)) {
    if (line.empty()) continue;
    json::object out;
    try {
      out = sign_one(json::parse(line).as_object());
    } catch (const std::exception& e) {
      // One bad line must not shift every later answer: reply in place, keep going.
      out = {{"error", e.what()}};
      ++failures;
    }
    std::cout << json::serialize(out) << '\n';
  }
  std::cout.flush();
  return failures == 0 ? 0 : 1;
}
