// Which proxy a request takes, read from the environment as curl and Go read it.
#include "http/proxy.hpp"

#include <doctest/doctest.h>

#include <map>
#include <string>

using namespace archie::http;

namespace {

std::map<std::string, std::string> vars;
const char* fake_getenv(const char* name) {
  auto it = vars.find(name);
  return it == vars.end() ? nullptr : it->second.c_str();
}

proxy_environment with(std::map<std::string, std::string> v) {
  vars = std::move(v);
  return read_proxies(&fake_getenv);
}

endpoint at(const char* url) { return *parse_endpoint(url); }

}  // namespace

TEST_CASE("a proxy URL gives host, port and Basic credentials; other schemes are refused") {
  auto p = parse_proxy("http://svc:p%40ss@proxy.corp:3128/");
  REQUIRE(p);
  CHECK(p->host == "proxy.corp");
  CHECK(p->port == 3128);
  CHECK(p->authorization == "Basic c3ZjOnBAc3M=");  // base64("svc:p@ss")
  CHECK(p->describe() == "proxy proxy.corp:3128");  // no credentials where errors show it
  auto bare = parse_proxy("10.0.0.5:8080");
  REQUIRE(bare);
  CHECK(bare->authorization.empty());
  CHECK(parse_proxy("proxy.corp")->port == 80);
  CHECK_FALSE(parse_proxy("socks5://proxy:1080"));
  CHECK_FALSE(parse_proxy("https://proxy:443"));
}

TEST_CASE("https endpoints take HTTPS_PROXY, http ones HTTP_PROXY; lower case wins; empty is unset") {
  auto env = with({{"HTTPS_PROXY", "http://tls-proxy:3128"}, {"http_proxy", "http://plain-proxy:3128"},
                   {"HTTP_PROXY", "http://ignored:1"}});
  CHECK(proxy_for(env, at("https://s3.amazonaws.com"))->host == "tls-proxy");
  CHECK(proxy_for(env, at("http://minio.corp:9000"))->host == "plain-proxy");
  env = with({{"https_proxy", ""}, {"HTTPS_PROXY", "http://upper:1"}});
  CHECK(proxy_for(env, at("https://storage.googleapis.com"))->host == "upper");
  CHECK_FALSE(proxy_for(with({}), at("https://s3.amazonaws.com")));
}

TEST_CASE("NO_PROXY: *, domains with their subdomains, hosts with a port, CIDR blocks; loopback and link-local go direct") {
  auto env = with({{"HTTPS_PROXY", "http://p:1"}, {"HTTP_PROXY", "http://p:1"},
                   {"NO_PROXY", " .internal.corp, minio.local:9000 ,example.com"}});
  CHECK_FALSE(proxy_for(env, at("https://s3.internal.corp")));
  CHECK_FALSE(proxy_for(env, at("https://internal.corp")));
  CHECK_FALSE(proxy_for(env, at("http://minio.local:9000")));
  CHECK(proxy_for(env, at("http://minio.local:9001")));  // another port
  CHECK_FALSE(proxy_for(env, at("https://api.example.com")));
  CHECK(proxy_for(env, at("https://notexample.com")));  // a suffix, not a subdomain
  CHECK_FALSE(proxy_for(env, at("http://169.254.169.254")));  // instance metadata
  CHECK_FALSE(proxy_for(env, at("http://169.254.170.2")));    // container credentials
  CHECK_FALSE(proxy_for(env, at("http://127.0.0.1:7480")));
  CHECK_FALSE(proxy_for(env, at("http://localhost:7480")));
  CHECK(proxy_for(env, at("http://10.1.2.3:9000")));
  CHECK_FALSE(proxy_for(with({{"HTTPS_PROXY", "http://p:1"}, {"NO_PROXY", "*"}}), at("https://s3.amazonaws.com")));
  // What Kubernetes clusters set: CIDR blocks, *.domain, bracketed IPv6 with a port.
  auto k8s = with({{"HTTP_PROXY", "http://p:1"}, {"HTTPS_PROXY", "http://p:1"},
                   {"NO_PROXY", "10.0.0.0/8,fd00::/8,*.svc.cluster.local,[2001:db8::5]:9000"}});
  CHECK_FALSE(proxy_for(k8s, at("http://10.96.4.2:9000")));
  CHECK(proxy_for(k8s, at("http://11.0.0.1:9000")));
  CHECK_FALSE(proxy_for(k8s, at("http://[fd00::1234]:9000")));
  CHECK_FALSE(proxy_for(k8s, at("http://minio.storage.svc.cluster.local:9000")));
  CHECK_FALSE(proxy_for(k8s, at("http://[2001:db8::5]:9000")));
  CHECK(proxy_for(k8s, at("http://[2001:db8::5]:9001")));
  CHECK(proxy_for(k8s, at("https://s3.amazonaws.com")));
  auto bad = with({{"HTTPS_PROXY", "socks5://p:1"}});
  CHECK_FALSE(proxy_for(bad, at("https://s3.amazonaws.com")));
  REQUIRE(bad.problems.size() == 1);
  CHECK(bad.problems[0].find("HTTPS_PROXY") != std::string::npos);
}
