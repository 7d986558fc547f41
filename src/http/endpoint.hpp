#pragma once
// A parsed service endpoint ("https://s3.example.com:9000/base").
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace archie::http {

struct endpoint {
  bool tls = false;
  std::string host;         ///< without brackets for IPv6
  std::uint16_t port = 80;
  std::string base_path;    ///< "" or "/base" (no trailing slash)
  /// Host header value: host, plus :port when not the scheme's default.
  std::string host_header() const;
};

/// nullopt when the text is not http(s)://host[:port][/path].
std::optional<endpoint> parse_endpoint(std::string_view url);

}  // namespace archie::http
