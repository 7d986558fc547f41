// Micro-benchmarks of the hot pure functions: SigV4 signing, MinIO event decoding, exclude
// matching, checksums. Google Benchmark (Debian libbenchmark-dev); reports ns/op.
//   meson setup build-bench --buildtype=release -Dbench=true && ninja -C build-bench
//   build-bench/bench/micro_bench
#include "event/minio_event.hpp"
#include "route/router.hpp"
#include "store/checksum.hpp"
#include "store/s3/sigv4.hpp"

#include <benchmark/benchmark.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <vector>

namespace {

using namespace archie;

std::string fixture(const char* name) {
  std::ifstream in(std::string(ARCHIE_EVENT_FIXTURES_DIR) + "/" + name, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void sigv4_sign_put(benchmark::State& state) {
  store::s3::credentials creds{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""};
  auto now = std::chrono::system_clock::now();
  auto key = store::s3::derive_signing_key(creds.secret_access_key, "20261126", "us-east-1", "s3");
  store::s3::request_to_sign req;
  req.method = "PUT";
  req.path = "/photos/2026/11/some key with spaces+plus ü.jpg";
  req.query = {{"partNumber", "3"}, {"uploadId", "2~abcdefghijklmnopqrstuvwxyz0123456789"}};
  req.headers = {{"host", "s3.example.com:9000"},
                 {"content-md5", "1B2M2Y8AsgTpgAmY7PhCfg=="},
                 {"content-type", "image/jpeg"},
                 {"x-amz-meta-archie-source-etag", "5d41402abc4b2a76b9719d911017c592"}};
  req.payload_hash = std::string(store::s3::unsigned_payload);
  for (auto _ : state) {
    auto r = store::s3::sign_v4(req, creds, key, "us-east-1", "s3", now);
    benchmark::DoNotOptimize(r.authorization);
  }
}
BENCHMARK(sigv4_sign_put);

void sigv4_derive_key(benchmark::State& state) {
  for (auto _ : state) {
    auto k = store::s3::derive_signing_key("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "20261126", "us-east-1", "s3");
    benchmark::DoNotOptimize(k);
  }
}
BENCHMARK(sigv4_derive_key);

void decode_put_event(benchmark::State& state) {
  std::string payload = fixture("put.json");
  for (auto _ : state) {
    auto r = event::decode_minio_event(payload);
    benchmark::DoNotOptimize(r);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * payload.size()));
}
BENCHMARK(decode_put_event);

void decode_special_chars_event(benchmark::State& state) {
  std::string payload = fixture("special-chars.json");
  for (auto _ : state) {
    auto r = event::decode_minio_event(payload);
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(decode_special_chars_event);

void exclude_match_miss(benchmark::State& state) {
  route::key_filter f({"^tmp/", "\\.part$", "^cache/.*\\.tmp$", "(^|/)\\.git/"});
  std::string key = "photos/2026/11/holiday/IMG_0042.jpg";
  for (auto _ : state) benchmark::DoNotOptimize(f.matches(key));
}
BENCHMARK(exclude_match_miss);

void route_decision(benchmark::State& state) {
  std::vector<config::route_config> routes(8);
  for (std::size_t i = 0; i < routes.size(); ++i) {
    routes[i].source = {"src", "bucket" + std::to_string(i), "prefix/"};
    routes[i].destinations = {{"dst", "replica", "r/"}, {"local", "mirror", ""}};
  }
  route::router r(routes);
  for (auto _ : state) benchmark::DoNotOptimize(r.route("bucket7", "prefix/a/b/c.jpg"));
}
BENCHMARK(route_decision);

void content_md5_16mib(benchmark::State& state) {
  std::vector<std::byte> part(16 << 20, std::byte{7});
  for (auto _ : state) benchmark::DoNotOptimize(store::content_md5(part));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * part.size()));
}
BENCHMARK(content_md5_16mib);

void crc32c_16mib(benchmark::State& state) {
  std::vector<std::byte> part(16 << 20, std::byte{7});
  for (auto _ : state) benchmark::DoNotOptimize(store::crc32c(part));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * part.size()));
}
BENCHMARK(crc32c_16mib);

// The slicing-by-8 fallback, for CPUs without a CRC32C instruction: the figure before it.
void crc32c_table_16mib(benchmark::State& state) {
  std::vector<std::byte> part(16 << 20, std::byte{7});
  for (auto _ : state) benchmark::DoNotOptimize(store::crc32c_table(part));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * part.size()));
}
BENCHMARK(crc32c_table_16mib);

}  // namespace

BENCHMARK_MAIN();
