#include "store/gcs/gcs_token.hpp"

#include "store/gcs/gcs_response.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>

namespace archie::store::gcs {
namespace json = boost::json;

namespace {

constexpr std::int64_t max_lifetime_seconds = max_token_lifetime.count();

std::chrono::seconds clamped_lifetime(std::int64_t seconds) {
  return std::chrono::seconds(std::clamp<std::int64_t>(seconds, 1, max_lifetime_seconds));
}

// A decimal string read as atoll would (leading blanks, an optional sign, digits up to the
// first other character; none at all is 0), but an out-of-range number saturates instead of
// being undefined.
std::chrono::seconds lifetime_from_text(std::string_view text) {
  auto start = text.find_first_not_of(" \t\n\v\f\r");
  if (start == std::string_view::npos) return clamped_lifetime(0);
  text.remove_prefix(start);
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  std::int64_t seconds = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), seconds);
  if (ec == std::errc::result_out_of_range) return text.front() == '-' ? clamped_lifetime(0) : max_token_lifetime;
  return clamped_lifetime(ec == std::errc{} ? seconds : 0);
}

std::chrono::seconds lifetime_from(const json::value& v) {
  if (const auto* i = v.if_int64()) return clamped_lifetime(*i);
  if (v.is_uint64()) return max_token_lifetime;  // Boost.JSON uses uint64 only above INT64_MAX
  if (const auto* d = v.if_double()) {
    // Compared as a double first: converting one outside int64's range is undefined behaviour.
    if (std::isnan(*d)) return unstated_token_lifetime;
    if (*d >= static_cast<double>(max_lifetime_seconds)) return max_token_lifetime;
    if (*d < 1) return clamped_lifetime(0);
    return clamped_lifetime(static_cast<std::int64_t>(*d));
  }
  if (const auto* s = v.if_string()) return lifetime_from_text(*s);
  return unstated_token_lifetime;
}

}  // namespace

std::optional<service_account_key> parse_service_account_key(std::string_view json_text, std::string& error) {
  auto parsed = parse_json_object(json_text);
  if (!parsed) {
    error = "not a JSON object";
    return std::nullopt;
  }
  const auto& o = *parsed;
  std::string type = json_string(o, "type");
  if (!type.empty() && type != "service_account") {
    error = "key type is \"" + type + "\", expected \"service_account\"";
    return std::nullopt;
  }
  service_account_key key;
  key.client_email = json_string(o, "client_email");
  key.private_key = json_string(o, "private_key");
  key.private_key_id = json_string(o, "private_key_id");
  key.token_uri = json_string(o, "token_uri");
  if (key.token_uri.empty()) key.token_uri = default_token_uri;
  if (key.client_email.empty()) {
    error = "no client_email";
    return std::nullopt;
  }
  if (key.private_key.empty()) {
    error = "no private_key";
    return std::nullopt;
  }
  return key;
}

std::optional<fetched_token> parse_token_response(std::string_view body) {
  auto parsed = parse_json_object(body);
  if (!parsed) return std::nullopt;
  const auto& o = *parsed;
  fetched_token t;
  t.value = json_string(o, "access_token");
  if (t.value.empty()) return std::nullopt;
  auto it = o.find("expires_in");
  t.lifetime = it == o.end() ? unstated_token_lifetime : lifetime_from(it->value());
  return t;
}

std::string describe_refusal(const http::response& r) {
  std::string what = "HTTP " + std::to_string(r.status);
  if (auto o = parse_json_object(r.body)) {
    std::string error = json_string(*o, "error");
    std::string desc = json_string(*o, "error_description");
    if (!error.empty()) what += " " + error;
    if (!desc.empty()) what += ": " + desc;
    return what;
  }
  std::string line = r.body.substr(0, r.body.find('\n'));
  if (line.size() > 200) line.resize(200);
  if (!line.empty()) what += ": " + line;
  return what;
}

std::string oauth_code(const http::response& r) {
  if (auto o = parse_json_object(r.body)) {
    std::string e = json_string(*o, "error");
    if (!e.empty()) return e;
  }
  return "HTTP" + std::to_string(r.status);
}

}  // namespace archie::store::gcs
