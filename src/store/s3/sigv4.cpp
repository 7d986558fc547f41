#include "store/s3/sigv4.hpp"

#include "http/ascii_case.hpp"
#include "http/percent_encoding.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cstdio>
#include <stdexcept>

namespace archie::store::s3 {

namespace {

constexpr std::string_view algorithm = "AWS4-HMAC-SHA256";
constexpr char hex_digits[] = "0123456789abcdef";

std::string to_hex(const unsigned char* bytes, std::size_t n) {
  std::string out(2 * n, '\0');
  for (std::size_t i = 0; i < n; ++i) {
    out[2 * i] = hex_digits[bytes[i] >> 4];
    out[2 * i + 1] = hex_digits[bytes[i] & 0xf];
  }
  return out;
}


bool is_blank(char c) { return c == ' ' || c == '\t'; }

// SigV4 "Trimall": no leading or trailing blanks, each inner run of blanks becomes one space.
// Tabs count as blanks too: they are HTTP whitespace, and botocore folds them the same way.
std::string trim_all(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  bool pending_space = false;
  for (char c : v) {
    if (is_blank(c)) {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out.push_back(' ');
    pending_space = false;
    out.push_back(c);
  }
  return out;
}

using hmac_digest = std::array<unsigned char, 32>;

hmac_digest hmac_sha256(const void* key, std::size_t key_len, std::string_view msg) {
  hmac_digest out{};
  unsigned int out_len = 0;
  if (HMAC(EVP_sha256(), key, static_cast<int>(key_len), reinterpret_cast<const unsigned char*>(msg.data()),
           msg.size(), out.data(), &out_len) == nullptr ||
      out_len != out.size())
    throw std::runtime_error("sigv4: HMAC-SHA256 failed");
  return out;
}

hmac_digest hmac_sha256(const hmac_digest& key, std::string_view msg) {
  return hmac_sha256(key.data(), key.size(), msg);
}

// Resolves '.' and '..' and drops empty segments, the way the AWS test suite and botocore
// normalise paths for services other than S3. A trailing '/' survives when the path had one
// and anything is left ("/a/b/.." gives "/a", as botocore does).
std::string normalise_path(std::string_view path) {
  if (path.empty()) return "/";
  std::vector<std::string_view> kept;
  std::size_t pos = 0;
  while (pos <= path.size()) {
    std::size_t slash = path.find('/', pos);
    if (slash == std::string_view::npos) slash = path.size();
    std::string_view seg = path.substr(pos, slash - pos);
    if (seg == "..") {
      if (!kept.empty()) kept.pop_back();
    } else if (!seg.empty() && seg != ".") {
      kept.push_back(seg);
    }
    pos = slash + 1;
  }
  std::string out = path.front() == '/' ? "/" : "";
  for (std::size_t i = 0; i < kept.size(); ++i) {
    if (i) out.push_back('/');
    out.append(kept[i]);
  }
  if (path.back() == '/' && !kept.empty()) out.push_back('/');
  return out;
}

std::string canonical_uri(const request_to_sign& r) {
  if (r.s3_path_rules) return r.path.empty() ? "/" : uri_encode(r.path, false);
  return uri_encode(normalise_path(r.path), false);
}

std::string canonical_query(const request_to_sign& r) {
  std::vector<std::pair<std::string, std::string>> encoded;
  encoded.reserve(r.query.size());
  for (const auto& [name, value] : r.query) encoded.emplace_back(uri_encode(name, true), uri_encode(value, true));
  // Sorted by encoded name, then encoded value: byte order, which is what AWS compares.
  std::sort(encoded.begin(), encoded.end());
  std::string out;
  for (const auto& [name, value] : encoded) {
    if (!out.empty()) out.push_back('&');
    out += name;
    out.push_back('=');
    out += value;
  }
  return out;
}

struct header_line {
  std::string name;   // lower case
  std::string value;  // trimmed; repeated headers already comma-joined
};

std::string format_amz_date(std::chrono::system_clock::time_point now) {
  using namespace std::chrono;
  auto secs = floor<seconds>(now);
  auto day = floor<days>(secs);
  year_month_day ymd{day};
  hh_mm_ss hms{secs - day};
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d%02u%02uT%02d%02d%02dZ", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                static_cast<int>(hms.seconds().count()));
  return buf;
}

// The key bytes are wiped when the scope ends, so they do not linger in freed memory.
struct wiped_key {
  signing_key key;
  ~wiped_key() { OPENSSL_cleanse(key.data(), key.size()); }
};

}  // namespace

std::string uri_encode(std::string_view s, bool encode_slash) { return http::percent_encode(s, !encode_slash); }

struct sha256_hasher::state {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  ~state() { EVP_MD_CTX_free(ctx); }
};

sha256_hasher::sha256_hasher() : state_(std::make_unique<state>()) {
  if (state_->ctx == nullptr || EVP_DigestInit_ex(state_->ctx, EVP_sha256(), nullptr) != 1)
    throw std::runtime_error("sigv4: SHA-256 init failed");
}
sha256_hasher::~sha256_hasher() = default;
sha256_hasher::sha256_hasher(sha256_hasher&&) noexcept = default;
sha256_hasher& sha256_hasher::operator=(sha256_hasher&&) noexcept = default;

void sha256_hasher::update(const void* data, std::size_t size) {
  if (size == 0) return;
  if (EVP_DigestUpdate(state_->ctx, data, size) != 1) throw std::runtime_error("sigv4: SHA-256 update failed");
}

std::string sha256_hasher::hex_digest() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(state_->ctx, md, &len) != 1 || EVP_DigestInit_ex(state_->ctx, EVP_sha256(), nullptr) != 1)
    throw std::runtime_error("sigv4: SHA-256 final failed");
  return to_hex(md, len);
}

std::string sha256_hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr) != 1)
    throw std::runtime_error("sigv4: SHA-256 failed");
  return to_hex(md, len);
}

signing_key derive_signing_key(std::string_view secret_access_key, std::string_view date, std::string_view region,
                               std::string_view service) {
  std::string seed = "AWS4";
  seed.append(secret_access_key);
  hmac_digest k = hmac_sha256(seed.data(), seed.size(), date);
  OPENSSL_cleanse(seed.data(), seed.size());
  k = hmac_sha256(k, region);
  k = hmac_sha256(k, service);
  return hmac_sha256(k, "aws4_request");
}

signing_result sign_v4(const request_to_sign& request, const credentials& creds, std::string_view region,
                       std::string_view service, std::chrono::system_clock::time_point now) {
  std::string date = format_amz_date(now).substr(0, 8);
  wiped_key key{derive_signing_key(creds.secret_access_key, date, region, service)};
  return sign_v4(request, creds, key.key, region, service, now);
}

signing_result sign_v4(const request_to_sign& request, const credentials& creds, const signing_key& key,
                       std::string_view region, std::string_view service,
                       std::chrono::system_clock::time_point now) {
  signing_result res;
  res.amz_date = format_amz_date(now);
  std::string_view date = std::string_view(res.amz_date).substr(0, 8);
  bool with_token = !creds.session_token.empty();

  // Headers the signer owns; a caller's stale copy (e.g. from a previous attempt) is dropped.
  auto owned_by_signer = [&](std::string_view lname) {
    return lname == "authorization" || lname == "x-amz-date" ||
           (lname == "x-amz-content-sha256" && request.content_sha256_header) ||
           (lname == "x-amz-security-token" && with_token);
  };

  std::vector<std::pair<std::string, std::string>> raw;  // (lower-case name, trimmed value)
  raw.reserve(request.headers.size() + 3);
  bool has_host = false;
  for (const auto& [name, value] : request.headers) {
    std::string lname = http::ascii_lower(name);
    if (owned_by_signer(lname)) continue;
    has_host = has_host || lname == "host";
    raw.emplace_back(std::move(lname), trim_all(value));
  }
  if (!has_host) throw std::invalid_argument("sigv4: the request has no host header");

  res.headers_to_add.emplace_back("x-amz-date", res.amz_date);
  if (request.content_sha256_header) res.headers_to_add.emplace_back("x-amz-content-sha256", request.payload_hash);
  if (with_token) res.headers_to_add.emplace_back("x-amz-security-token", creds.session_token);
  for (const auto& [name, value] : res.headers_to_add) raw.emplace_back(name, trim_all(value));

  // Stable sort keeps repeated headers in the order given, which is the order their values join.
  std::stable_sort(raw.begin(), raw.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<header_line> lines;
  for (auto& [name, value] : raw) {
    if (!lines.empty() && lines.back().name == name) {
      lines.back().value.push_back(',');
      lines.back().value += value;
    } else {
      lines.push_back({std::move(name), std::move(value)});
    }
  }

  std::string signed_headers;
  std::string canonical_headers;
  for (const auto& h : lines) {
    if (!signed_headers.empty()) signed_headers.push_back(';');
    signed_headers += h.name;
    canonical_headers += h.name;
    canonical_headers.push_back(':');
    canonical_headers += h.value;
    canonical_headers.push_back('\n');
  }

  res.canonical_request.append(request.method).push_back('\n');
  res.canonical_request.append(canonical_uri(request)).push_back('\n');
  res.canonical_request.append(canonical_query(request)).push_back('\n');
  res.canonical_request.append(canonical_headers).push_back('\n');
  res.canonical_request.append(signed_headers).push_back('\n');
  res.canonical_request.append(request.payload_hash);

  std::string scope = std::string(date) + "/" + std::string(region) + "/" + std::string(service) + "/aws4_request";
  res.string_to_sign = std::string(algorithm) + "\n" + res.amz_date + "\n" + scope + "\n" +
                       sha256_hex(res.canonical_request);

  hmac_digest sig = hmac_sha256(key.data(), key.size(), res.string_to_sign);
  res.signature = to_hex(sig.data(), sig.size());
  res.authorization = std::string(algorithm) + " Credential=" + creds.access_key_id + "/" + scope +
                      ", SignedHeaders=" + signed_headers + ", Signature=" + res.signature;
  res.headers_to_add.emplace_back("Authorization", res.authorization);
  return res;
}

}  // namespace archie::store::s3
