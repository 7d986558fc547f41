#pragma once
// Outbound proxies as corporate clusters configure them: HTTPS_PROXY for https endpoints (a
// CONNECT tunnel; TLS stays end to end), HTTP_PROXY for http ones (requests in absolute form),
// NO_PROXY for the exceptions. Read from the environment the way curl and Go read them
// (upper or lower case; an empty value is unset). Loopback and link-local addresses never go
// through a proxy (as in Go): the instance metadata and container credential endpoints
// (169.254.169.254, 169.254.170.2) must be reached directly.
#include "http/endpoint.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace archie::http {

struct proxy {
  std::string host;
  std::uint16_t port = 0;
  /// "Basic ..." from the proxy URL's user:password; empty without one. A secret: never
  /// logged, never part of an error message.
  std::string authorization;
  /// "proxy HOST:PORT": how errors name it (without credentials).
  std::string describe() const;
};

struct proxy_environment {
  std::optional<proxy> https;  ///< HTTPS_PROXY / https_proxy
  std::optional<proxy> http;   ///< HTTP_PROXY / http_proxy
  /// NO_PROXY / no_proxy, split at commas, trimmed, lower-case: "*", names and domains
  /// (".corp", "*.corp"), addresses, CIDR blocks, each optionally with ":port".
  std::vector<std::string> no_proxy;
  std::vector<std::string> problems;  ///< variables that could not be read (logged once at start)
};

/// Parses "http://[user:password@]host[:port][/]" or "host[:port]" (port default 80);
/// nullopt when it is neither.
std::optional<proxy> parse_proxy(std::string_view url);

/// The proxy variables of this process, read once.
const proxy_environment& process_proxies();
/// Reads them from `get` (tests): get("HTTPS_PROXY") and so on, nullptr when unset.
proxy_environment read_proxies(const char* (*get)(const char*));

/// The proxy to reach `target` through, if any.
std::optional<proxy> proxy_for(const proxy_environment& env, const endpoint& target);

}  // namespace archie::http
