#include "http/proxy.hpp"

#include "http/ascii_case.hpp"

#include <openssl/evp.h>

#include <boost/asio/ip/address.hpp>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <vector>

namespace archie::http {
namespace {

std::string basic_credentials(std::string_view user_info) {
  std::string out(4 * ((user_info.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(user_info.data()), static_cast<int>(user_info.size()));
  out.resize(static_cast<std::size_t>(n));
  return "Basic " + out;
}

// %XX in the user info of a URL ("p%40ss" is "p@ss").
std::string percent_decoded(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// Loopback and link-local: metadata and credential endpoints, sidecars, test servers.
bool always_direct(const std::string& host) {
  if (ascii_lower(host) == "localhost") return true;
  boost::system::error_code ec;
  auto a = boost::asio::ip::make_address(host, ec);
  if (ec) return false;
  if (a.is_loopback()) return true;
  if (a.is_v4()) return (a.to_v4().to_uint() & 0xffff0000u) == 0xa9fe0000u;  // 169.254.0.0/16
  return a.to_v6().is_link_local();
}

// Whether `host` is an IP address inside the CIDR block `block` ("10.0.0.0/8", "fd00::/8").
bool in_block(const std::string& host, const std::string& block) {
  auto slash = block.find('/');
  if (slash == std::string::npos) return false;
  boost::system::error_code ec;
  auto address = boost::asio::ip::make_address(host, ec);
  if (ec) return false;
  auto base = boost::asio::ip::make_address(block.substr(0, slash), ec);
  if (ec || base.is_v4() != address.is_v4()) return false;
  const int bits = std::atoi(block.c_str() + slash + 1);
  auto bytes_of = [](const boost::asio::ip::address& a) {
    std::vector<unsigned char> out;
    if (a.is_v4()) {
      auto b = a.to_v4().to_bytes();
      out.assign(b.begin(), b.end());
    } else {
      auto b = a.to_v6().to_bytes();
      out.assign(b.begin(), b.end());
    }
    return out;
  };
  const auto x = bytes_of(address), y = bytes_of(base);
  if (bits < 0 || bits > static_cast<int>(x.size() * 8)) return false;
  for (int i = 0; i < bits; ++i) {
    const int mask = 0x80 >> (i % 8);
    if ((x[static_cast<std::size_t>(i / 8)] & mask) != (y[static_cast<std::size_t>(i / 8)] & mask)) return false;
  }
  return true;
}

// NO_PROXY entries: "*" (everything), a host or domain ("example.com" matches it and its
// subdomains; ".example.com" and "*.example.com" the same, as curl and Go read them), an IP
// address or a CIDR block ("10.0.0.0/8"), each name or address optionally with ":port"
// (IPv6 in brackets then: "[fd00::1]:9000").
bool excluded(const std::vector<std::string>& no_proxy, const endpoint& target) {
  const std::string host = ascii_lower(target.host);
  for (const auto& entry : no_proxy) {
    if (entry == "*") return true;
    if (entry.find('/') != std::string::npos) {
      if (in_block(host, entry)) return true;
      continue;
    }
    std::string name = entry;
    std::optional<std::uint16_t> port;
    if (!name.empty() && name.front() == '[') {  // [v6] or [v6]:port
      auto close = name.find(']');
      if (close == std::string::npos) continue;
      if (close + 1 < name.size() && name[close + 1] == ':')
        port = static_cast<std::uint16_t>(std::atoi(name.c_str() + close + 2));
      name = name.substr(1, close - 1);
    } else if (auto colon = name.rfind(':'); colon != std::string::npos && name.find(':') == colon) {
      port = static_cast<std::uint16_t>(std::atoi(name.c_str() + colon + 1));
      name.resize(colon);
    }
    if (port && *port != target.port) continue;
    if (name.rfind("*.", 0) == 0) name.erase(0, 1);
    if (!name.empty() && name.front() == '.') name.erase(0, 1);
    if (name.empty()) continue;
    if (host == name) return true;
    if (host.size() > name.size() && host.compare(host.size() - name.size(), name.size(), name) == 0 &&
        host[host.size() - name.size() - 1] == '.')
      return true;
  }
  return false;
}

const char* from_environment(const char* name) { return std::getenv(name); }

}  // namespace

std::string proxy::describe() const { return "proxy " + host + ":" + std::to_string(port); }

std::optional<proxy> parse_proxy(std::string_view url) {
  if (url.rfind("http://", 0) == 0) url.remove_prefix(7);
  else if (url.find("://") != std::string_view::npos) return std::nullopt;  // https:// or socks proxies: not supported
  while (!url.empty() && url.back() == '/') url.remove_suffix(1);
  proxy p;
  if (auto at = url.rfind('@'); at != std::string_view::npos) {
    p.authorization = basic_credentials(percent_decoded(url.substr(0, at)));
    url.remove_prefix(at + 1);
  }
  if (url.find('/') != std::string_view::npos) return std::nullopt;
  auto ep = parse_endpoint("http://" + std::string(url));
  if (!ep) return std::nullopt;
  p.host = ep->host;
  p.port = ep->port;
  return p;
}

proxy_environment read_proxies(const char* (*get)(const char*)) {
  proxy_environment env;
  auto value = [&](const char* upper_name, const char* lower_name) -> std::string {
    const char* v = get(lower_name);
    if (!v || !*v) v = get(upper_name);
    return v ? std::string(v) : std::string();
  };
  auto read = [&](const char* upper_name, const char* lower_name, std::optional<proxy>& into) {
    std::string v = value(upper_name, lower_name);
    if (v.empty()) return;
    into = parse_proxy(v);
    if (!into) env.problems.push_back(std::string(upper_name) + " is not http://[user:password@]host[:port]; ignored");
  };
  read("HTTPS_PROXY", "https_proxy", env.https);
  read("HTTP_PROXY", "http_proxy", env.http);
  std::string list = value("NO_PROXY", "no_proxy");
  std::size_t at = 0;
  while (at <= list.size()) {
    auto comma = list.find(',', at);
    if (comma == std::string::npos) comma = list.size();
    std::string entry = ascii_lower(list.substr(at, comma - at));
    entry.erase(0, entry.find_first_not_of(" \t"));
    entry.erase(entry.find_last_not_of(" \t") + 1);
    if (!entry.empty()) env.no_proxy.push_back(entry);
    at = comma + 1;
  }
  return env;
}

const proxy_environment& process_proxies() {
  static const proxy_environment env = read_proxies(&from_environment);
  return env;
}

std::optional<proxy> proxy_for(const proxy_environment& env, const endpoint& target) {
  const auto& chosen = target.tls ? env.https : env.http;
  if (!chosen || always_direct(target.host) || excluded(env.no_proxy, target)) return std::nullopt;
  return chosen;
}

}  // namespace archie::http
