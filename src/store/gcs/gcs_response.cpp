#include "store/gcs/gcs_response.hpp"

#include <boost/json/parse.hpp>

#include <openssl/evp.h>

#include <algorithm>
#include <charconv>
#include <limits>

namespace archie::store::gcs {
namespace json = boost::json;

namespace {

// Numbers GCS sends as decimal strings ("size": "1234"); 0 when the text is not one.
template <class Int>
Int to_int(std::string_view s) {
  Int v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

bool is_base64_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

}  // namespace

std::string base64_to_hex(std::string_view b64) {
  if (b64.empty() || b64.size() % 4) return {};
  // EVP_DecodeBlock counts padding as decoded bytes (3 per quad) and skips surrounding
  // whitespace, so the real length is only known for clean input: alphabet characters, then
  // at most two '='. "====" or "A===" would otherwise take more padding off than it added.
  const std::size_t data_chars = b64.find_last_not_of('=') + 1;  // npos + 1 == 0: all padding
  const std::size_t pad = b64.size() - data_chars;
  if (pad > 2 || !std::all_of(b64.begin(), b64.begin() + data_chars, is_base64_char)) return {};
  std::string raw(b64.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(raw.data()),
                          reinterpret_cast<const unsigned char*>(b64.data()), static_cast<int>(b64.size()));
  if (n < 0 || static_cast<std::size_t>(n) != raw.size()) return {};
  static const char* hex = "0123456789abcdef";
  std::string out;
  out.reserve((raw.size() - pad) * 2);
  for (std::size_t i = 0; i < raw.size() - pad; ++i) {
    auto c = static_cast<unsigned char>(raw[i]);
    out += hex[c >> 4];
    out += hex[c & 15];
  }
  return out;
}

object_metadata object_from_json(const json::object& o) {
  object_metadata m;
  m.info.size = to_int<std::uint64_t>(json_string(o, "size"));
  m.generation = to_int<std::int64_t>(json_string(o, "generation"));
  m.metageneration = to_int<std::int64_t>(json_string(o, "metageneration"));
  m.md5_base64 = json_string(o, "md5Hash");
  m.crc32c_base64 = json_string(o, "crc32c");
  m.json_etag = json_string(o, "etag");
  m.info.etag = m.md5_base64.empty() ? m.json_etag : base64_to_hex(m.md5_base64);
  m.info.version_id = json_string(o, "generation");
  m.info.content_type = json_string(o, "contentType");
  m.info.content_encoding = json_string(o, "contentEncoding");
  m.info.content_disposition = json_string(o, "contentDisposition");
  m.info.cache_control = json_string(o, "cacheControl");
  m.info.content_language = json_string(o, "contentLanguage");
  m.info.last_modified = json_string(o, "updated");
  if (auto it = o.find("metadata"); it != o.end() && it->value().is_object()) {
    for (const auto& kv : it->value().as_object()) {
      std::string v;
      if (const auto* s = kv.value().if_string()) v = std::string(*s);
      m.info.user_metadata.emplace_back(std::string(kv.key()), std::move(v));
    }
  }
  return m;
}

std::optional<object_metadata> parse_object(std::string_view body) {
  auto o = parse_json_object(body);
  if (!o) return std::nullopt;
  return object_from_json(*o);
}

object_metadata object_from_headers(const http::response& r) {
  object_metadata m;
  bool stored_length = false;
  for (const auto& [k, v] : r.headers) {
    if (k == "x-goog-generation") {
      m.generation = to_int<std::int64_t>(v);
      m.info.version_id = v;
    } else if (k == "x-goog-metageneration") {
      m.metageneration = to_int<std::int64_t>(v);
    } else if (k == "x-goog-hash") {  // "crc32c=AAAAAA==,md5=..." (or one header per hash)
      std::size_t pos = 0;
      while (pos < v.size()) {
        auto comma = v.find(',', pos);
        std::string item = v.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
        item.erase(0, item.find_first_not_of(' '));
        if (item.rfind("crc32c=", 0) == 0) m.crc32c_base64 = item.substr(7);
        else if (item.rfind("md5=", 0) == 0) m.md5_base64 = item.substr(4);
        if (comma == std::string::npos) break;
        pos = comma + 1;
      }
    } else if (k == "x-goog-stored-content-length") {
      m.info.size = to_int<std::uint64_t>(v);
      stored_length = true;
    } else if (k == "etag") {
      m.json_etag = v.size() >= 2 && v.front() == '"' ? v.substr(1, v.size() - 2) : v;
    } else if (k == "content-type") {
      m.info.content_type = v;
    } else if (k == "content-encoding") {
      m.info.content_encoding = v;
    } else if (k == "content-disposition") {
      m.info.content_disposition = v;
    } else if (k == "last-modified") {
      m.info.last_modified = v;
    } else if (k.rfind("x-goog-meta-", 0) == 0) {
      m.info.user_metadata.emplace_back(k.substr(12), v);
    }
  }
  if (!stored_length) {
    if (auto range = r.header("content-range"); range && range->rfind('/') != std::string::npos)
      m.info.size = to_int<std::uint64_t>(std::string_view(*range).substr(range->rfind('/') + 1));
    else if (auto len = r.header("content-length"))
      m.info.size = to_int<std::uint64_t>(*len);
  }
  m.info.etag = m.md5_base64.empty() ? m.json_etag : base64_to_hex(m.md5_base64);
  return m;
}

std::optional<list_page> parse_list_page(std::string_view body) {
  auto parsed = parse_json_object(body);
  if (!parsed) return std::nullopt;
  const auto& o = *parsed;
  list_page page;
  if (auto it = o.find("items"); it != o.end() && it->value().is_array()) {
    for (const auto& item : it->value().as_array()) {
      if (!item.is_object()) continue;
      const auto& io = item.as_object();
      listed_object lo;
      lo.name = json_string(io, "name");
      lo.size = to_int<std::uint64_t>(json_string(io, "size"));
      lo.generation = to_int<std::int64_t>(json_string(io, "generation"));
      lo.md5_base64 = json_string(io, "md5Hash");
      page.objects.push_back(std::move(lo));
    }
  }
  page.next_page_token = json_string(o, "nextPageToken");
  return page;
}

std::optional<generation_page> parse_generation_page(std::string_view body) {
  auto parsed = parse_json_object(body);
  if (!parsed) return std::nullopt;
  generation_page page;
  if (auto it = parsed->find("items"); it != parsed->end() && it->value().is_array()) {
    for (const auto& item : it->value().as_array()) {
      if (!item.is_object()) continue;
      const auto& io = item.as_object();
      object_generation g;
      g.name = json_string(io, "name");
      g.live = !io.contains("timeDeleted");
      g.meta = object_from_json(io);
      page.generations.push_back(std::move(g));
    }
  }
  page.next_page_token = json_string(*parsed, "nextPageToken");
  return page;
}

std::optional<bool> parse_versioning_enabled(std::string_view body) {
  auto parsed = parse_json_object(body);
  if (!parsed) return std::nullopt;
  auto it = parsed->find("versioning");
  if (it == parsed->end() || !it->value().is_object()) return false;
  const auto& v = it->value().as_object();
  auto enabled = v.find("enabled");
  return enabled != v.end() && enabled->value().is_bool() && enabled->value().as_bool();
}

error_body parse_error_body(std::string_view body) {
  error_body out;
  if (auto o = parse_json_object(body)) {
    if (auto it = o->find("error"); it != o->end() && it->value().is_object()) {
      const auto& e = it->value().as_object();
      out.message = json_string(e, "message");
      if (auto errs = e.find("errors"); errs != e.end() && errs->value().is_array() &&
                                        !errs->value().as_array().empty() && errs->value().as_array()[0].is_object())
        out.reason = json_string(errs->value().as_array()[0].as_object(), "reason");
    }
  } else if (!body.empty()) {
    out.message = std::string(body.substr(0, std::min<std::size_t>(body.find('\n'), 200)));
  }
  return out;
}

std::optional<std::uint64_t> persisted_from_308(const http::response& r) {
  auto range = r.header("range");
  if (!range) return 0;
  auto dash = range->rfind('-');
  if (range->rfind("bytes=", 0) != 0 || dash == std::string::npos) return std::nullopt;
  std::uint64_t last = 0;
  auto [p, ec] = std::from_chars(range->data() + dash + 1, range->data() + range->size(), last);
  // The largest value would wrap to "0 persisted" below.
  if (ec != std::errc{} || last == std::numeric_limits<std::uint64_t>::max()) return std::nullopt;
  return last + 1;
}

std::string apply_session_answer(resumable_session& s, const http::response& r) {
  if (r.status == 308) {
    auto p = persisted_from_308(r);
    if (!p) return "malformed Range header in a 308 answer";
    // More than the upload has would make the next chunk start past the end of its buffer.
    if (*p > s.total)
      return "a 308 answer claims " + std::to_string(*p) + " bytes of a " + std::to_string(s.total) + "-byte upload";
    s.persisted = *p;
    return {};
  }
  auto m = parse_object(r.body);
  if (!m) return "the finished upload's answer is not an object resource";
  s.result = std::move(*m);
  s.persisted = s.total;
  return {};
}

int retry_after_seconds(const http::response& r, int max_seconds) {
  auto v = r.header("retry-after");
  if (!v) return 0;
  return std::clamp(to_int<int>(*v), 0, max_seconds);
}

}  // namespace archie::store::gcs
