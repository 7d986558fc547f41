#pragma once
// Server URLs may carry credentials ("nats://user:pass@host:4222"). Anything that shows a URL
// (logs, check-config, /ready, error messages) shows it through this.
#include <string>
#include <string_view>

namespace archie::config {

/// "nats://user:pass@host:4222" -> "nats://<redacted>@host:4222"; URLs without userinfo are
/// returned unchanged. Never fails: a string that is not a URL is returned as is.
/// The userinfo ends at the last '@': passwords hold '/', '?', '#' and '@' unescaped often
/// enough (generated ones), and showing a host path that contains '@' redacted leaks nothing.
inline std::string redact_userinfo(std::string_view url) {
  auto scheme = url.find("://");
  std::size_t authority = scheme == std::string_view::npos ? 0 : scheme + 3;
  auto at = url.rfind('@');
  if (at == std::string_view::npos || at < authority) return std::string(url);
  return std::string(url.substr(0, authority)) + "<redacted>" + std::string(url.substr(at));
}

/// Every URL of a comma-separated list (nats.c reports server lists that way), redacted.
inline std::string redact_userinfo_list(std::string_view urls) {
  std::string out;
  std::size_t pos = 0;
  while (pos <= urls.size()) {
    auto comma = urls.find(',', pos);
    auto one = urls.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
    out += (out.empty() && pos == 0 ? "" : ",") + redact_userinfo(one);
    if (comma == std::string_view::npos) break;
    pos = comma + 1;
  }
  return out;
}

/// Free text (an error message from a library) with the userinfo of every URL in it redacted.
inline std::string redact_userinfo_in_text(std::string_view text) {
  std::string out;
  std::size_t pos = 0;
  for (;;) {
    auto scheme = text.find("://", pos);
    if (scheme == std::string_view::npos) break;
    std::size_t start = scheme + 3;
    std::size_t end = start;
    // A URL in text ends at white space or the punctuation that closes it; not at '/', which
    // a password may hold.
    while (end < text.size() && text[end] != ' ' && text[end] != ',' && text[end] != ')' && text[end] != '\'' &&
           text[end] != '"' && text[end] != '\n')
      ++end;
    auto at = text.substr(start, end - start).rfind('@');
    out += text.substr(pos, start - pos);
    if (at != std::string_view::npos) {
      out += "<redacted>";
      out += text.substr(start + at, end - start - at);
    } else {
      out += text.substr(start, end - start);
    }
    pos = end;
  }
  out += text.substr(pos);
  return out;
}

}  // namespace archie::config
