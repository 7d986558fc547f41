// Asks archie's S3 credential provider for credentials, as a store configured with
// `credentials = MODE` would, and prints one JSON line per get(): the access key id and
// SHA-256 digests of the secret and session token (so tests compare them with what botocore
// got without printing them), the resolved source and the remote fetch count.
//
//   credentials_probe MODE [GETS [INTERVAL_MS]]
// Env: the AWS_* variables of the chosen source; S3_REGION; S3_STS_ENDPOINT (sts_endpoint);
// S3_PROFILE (profile).
#include "config/config.hpp"
#include "store/s3/credentials/credential_provider.hpp"
#include "store/s3/sigv4.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <cstdlib>
#include <iostream>
#include <map>
#include <string>

namespace asio = boost::asio;
namespace json = boost::json;
using namespace archie::store;
using namespace archie::store::s3;

namespace {

const std::map<std::string, archie::config::s3_credentials> modes{
    {"env", archie::config::s3_credentials::env},
    {"profile", archie::config::s3_credentials::profile},
    {"web_identity", archie::config::s3_credentials::web_identity},
    {"container", archie::config::s3_credentials::container},
    {"imds", archie::config::s3_credentials::imds},
    {"chain", archie::config::s3_credentials::chain}};

asio::awaitable<void> run(credential_provider& provider, int gets, int interval_ms) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (int i = 0; i < gets; ++i) {
    if (i > 0) {
      timer.expires_after(std::chrono::milliseconds(interval_ms));
      co_await timer.async_wait(asio::use_awaitable);
    }
    auto got = co_await provider.get();
    json::object line;
    if (got) {
      line = {{"ok", true},
              {"access_key_id", got->access_key_id},
              {"secret_sha256", sha256_hex(got->secret_access_key)},
              {"token_sha256", got->session_token.empty() ? std::string{} : sha256_hex(got->session_token)}};
    } else {
      line = {{"ok", false}, {"kind", to_string(got.error().kind)}, {"code", got.error().code},
              {"message", got.error().describe()}};
    }
    line["source"] = provider.describe();
    line["fetches"] = provider.fetches();
    std::cout << json::serialize(line) << std::endl;
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !modes.count(argv[1])) {
    std::cerr << "usage: credentials_probe env|profile|web_identity|container|imds|chain [GETS [INTERVAL_MS]]\n";
    return 2;
  }
  archie::config::s3_store_config cfg;
  cfg.endpoint = "http://127.0.0.1:1";
  cfg.credentials = modes.at(argv[1]);
  if (const char* r = std::getenv("S3_REGION")) cfg.region = r;
  if (const char* e = std::getenv("S3_STS_ENDPOINT")) cfg.sts_endpoint = e;
  if (const char* p = std::getenv("S3_PROFILE")) cfg.profile = p;
  int gets = argc > 2 ? std::atoi(argv[2]) : 1;
  int interval_ms = argc > 3 ? std::atoi(argv[3]) : 0;
  asio::io_context io;
  credential_provider provider(io.get_executor(), "probe", cfg);
  asio::co_spawn(io, run(provider, gets, interval_ms), asio::detached);
  io.run();
  return 0;
}
