#include "store/s3/credentials/aws_credentials.hpp"

#include "store/json_fields.hpp"
#include "store/s3/xml_reader.hpp"

#include <boost/json.hpp>

#include <charconv>

namespace archie::store::s3 {
namespace json = boost::json;

namespace {

bool digits(std::string_view s, std::size_t pos, std::size_t n, int& out) {
  if (pos + n > s.size()) return false;
  auto [end, ec] = std::from_chars(s.data() + pos, s.data() + pos + n, out);
  return ec == std::errc() && end == s.data() + pos + n;
}

credentials_answer failed(std::string code, std::string error) {
  return credentials_answer{std::nullopt, std::move(code), std::move(error)};
}

}  // namespace

std::optional<std::chrono::system_clock::time_point> parse_iso8601_utc(std::string_view t) {
  int y, mo, d, h, mi, s;
  if (t.size() < 20 || t[4] != '-' || t[7] != '-' || (t[10] != 'T' && t[10] != 't') || t[13] != ':' ||
      t[16] != ':')
    return std::nullopt;
  if (!digits(t, 0, 4, y) || !digits(t, 5, 2, mo) || !digits(t, 8, 2, d) || !digits(t, 11, 2, h) ||
      !digits(t, 14, 2, mi) || !digits(t, 17, 2, s))
    return std::nullopt;
  std::size_t pos = 19;
  if (pos < t.size() && t[pos] == '.') {
    ++pos;
    std::size_t start = pos;
    while (pos < t.size() && t[pos] >= '0' && t[pos] <= '9') ++pos;
    if (pos == start) return std::nullopt;
  }
  std::string_view zone = t.substr(pos);
  if (zone != "Z" && zone != "z" && zone != "+00:00") return std::nullopt;
  using namespace std::chrono;
  year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)}, day{static_cast<unsigned>(d)}};
  // system_clock counts nanoseconds in 64 bits: it ends in 2262, so later years are refused.
  if (!ymd.ok() || y < 1970 || y > 2200 || h > 23 || mi > 59 || s > 60) return std::nullopt;
  return sys_days{ymd} + hours{h} + minutes{mi} + seconds{s};
}

credentials_answer parse_sts_answer(std::string_view xml) {
  if (xml.find("<ErrorResponse") != std::string_view::npos || xml.find("<Error>") != std::string_view::npos) {
    std::string code = xml_first(xml, "Code").value_or("");
    std::string message = xml_first(xml, "Message").value_or("");
    return failed(code, "STS refused: " + (code.empty() ? std::string("(no code)") : code) +
                            (message.empty() ? "" : ": " + message));
  }
  if (xml.find("<AssumeRoleWithWebIdentityResult") == std::string_view::npos &&
      xml.find("<AssumeRoleResult") == std::string_view::npos)
    return failed("", "STS answer is not an AssumeRoleWithWebIdentityResponse or AssumeRoleResponse");
  auto creds = xml_elements(xml, "Credentials");
  if (creds.empty()) return failed("", "STS answer carries no Credentials");
  aws_credentials out;
  out.keys.access_key_id = xml_first(creds.front(), "AccessKeyId").value_or("");
  out.keys.secret_access_key = xml_first(creds.front(), "SecretAccessKey").value_or("");
  out.keys.session_token = xml_first(creds.front(), "SessionToken").value_or("");
  std::string expiration = xml_first(creds.front(), "Expiration").value_or("");
  if (out.keys.access_key_id.empty() || out.keys.secret_access_key.empty() || out.keys.session_token.empty())
    return failed("", "STS Credentials lack AccessKeyId, SecretAccessKey or SessionToken");
  out.expiration = parse_iso8601_utc(expiration);
  if (!out.expiration) return failed("", "STS Credentials carry no valid Expiration (\"" + expiration + "\")");
  return credentials_answer{std::move(out), "", ""};
}

credentials_answer parse_credentials_json(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return failed("", "credentials answer is not a JSON object");
  const auto& o = v.get_object();
  std::string code = json_string(o, "Code");
  if (!code.empty() && code != "Success")
    return failed(code, "credentials answer says " + code + (json_string(o, "Message").empty() ? "" : ": " +
                                                                 json_string(o, "Message")));
  aws_credentials out;
  out.keys.access_key_id = json_string(o, "AccessKeyId");
  out.keys.secret_access_key = json_string(o, "SecretAccessKey");
  out.keys.session_token = json_string(o, "Token");
  if (out.keys.access_key_id.empty() || out.keys.secret_access_key.empty())
    return failed("", "credentials answer lacks AccessKeyId or SecretAccessKey");
  std::string expiration = json_string(o, "Expiration");
  if (!expiration.empty()) {
    out.expiration = parse_iso8601_utc(expiration);
    if (!out.expiration) return failed("", "credentials answer has an invalid Expiration (\"" + expiration + "\")");
  }
  return credentials_answer{std::move(out), "", ""};
}

bool container_endpoint_allowed(bool tls, std::string_view host) {
  if (tls) return true;
  if (host == "localhost" || host == "::1" || host == "169.254.170.2" || host == "169.254.170.23" ||
      host == "fd00:ec2::23")
    return true;
  // 127.0.0.0/8 written as a dotted quad: four numbers, the first 127.
  if (host.substr(0, 4) != "127.") return false;
  int dots = 0;
  for (char c : host) {
    if (c == '.') ++dots;
    else if (c < '0' || c > '9') return false;
  }
  return dots == 3 && host.back() != '.';
}

}  // namespace archie::store::s3
