// Drives archie's S3 client from the command line so integration tests and benchmarks can
// exercise it against a real server. One operation per run; prints one JSON line.
//
//   s3_probe ENDPOINT ACCESS SECRET OP ARGS...   (ACCESS SECRET as "- -": the credential chain)
//   ops: put BUCKET KEY FILE            (single PUT from an mmap of FILE)
//        mput BUCKET KEY FILE PART_MIB  (multipart upload, parts in parallel)
//        get BUCKET KEY FILE [PART_MIB] (HEAD, then ranged GETs in parallel into an mmap of FILE)
//        head BUCKET KEY | delete BUCKET KEY | list BUCKET PREFIX | uploads BUCKET
//        copy BUCKET SRC DST | mcopy BUCKET SRC DST PART_MIB (UploadPartCopy)
//        mkbucket BUCKET
//        abort-after-parts BUCKET KEY FILE PART_MIB N (uploads N parts, then aborts: leak check)
//        bench-put BUCKET PREFIX COUNT SIZE CONCURRENCY | bench-get BUCKET PREFIX COUNT SIZE CONCURRENCY
// Env: S3_REGION (default us-east-1), S3_PAYLOAD_SIGNING (auto|signed|unsigned), S3_MAX_CONNECTIONS.
#include "mapped_file.hpp"
#include "config/config.hpp"
#include "store/s3/s3_client.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <iostream>

namespace asio = boost::asio;
namespace json = boost::json;
using namespace archie::store;
using namespace archie::store::s3;

namespace {

using archie::tools::mapped_file;


json::object error_json(const store_error& e) {
  return {{"ok", false},        {"kind", to_string(e.kind)}, {"status", e.http_status}, {"code", e.code},
          {"message", e.message}, {"request_id", e.request_id}, {"describe", e.describe()}};
}

json::object info_json(const object_info& i) {
  json::object meta;
  for (const auto& [k, v] : i.user_metadata) meta[k] = v;
  return {{"ok", true},
          {"size", i.size},
          {"etag", i.etag},
          {"content_type", i.content_type},
          {"content_encoding", i.content_encoding},
          {"content_disposition", i.content_disposition},
          {"cache_control", i.cache_control},
          {"metadata", meta}};
}

object_info meta_from_env() {
  object_info m;
  if (const char* v = std::getenv("S3_CONTENT_TYPE")) m.content_type = v;
  if (const char* v = std::getenv("S3_CACHE_CONTROL")) m.cache_control = v;
  if (const char* v = std::getenv("S3_META")) {  // "k1=v1;k2=v2"
    std::string s = v;
    std::size_t pos = 0;
    while (pos < s.size()) {
      auto end = s.find(';', pos);
      auto item = s.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
      if (auto eq = item.find('='); eq != std::string::npos) m.user_metadata.emplace_back(item.substr(0, eq), item.substr(eq + 1));
      if (end == std::string::npos) break;
      pos = end + 1;
    }
  }
  return m;
}

// Runs fn(i) for i in [0, n) with at most `width` in flight.
template <class Fn>
asio::awaitable<void> parallel_for(std::size_t n, std::size_t width, Fn fn) {
  auto ex = co_await asio::this_coro::executor;
  std::size_t next = 0, running = 0;
  asio::steady_timer wake(ex, std::chrono::steady_clock::time_point::max());
  auto worker = [&]() -> asio::awaitable<void> {
    while (next < n) {
      std::size_t i = next++;
      co_await fn(i);
    }
    if (--running == 0) wake.cancel();
  };
  for (std::size_t w = 0; w < std::min(width, n); ++w) {
    ++running;
    asio::co_spawn(ex, worker(), asio::detached);
  }
  if (running) co_await wake.async_wait(asio::as_tuple(asio::use_awaitable));
}

asio::awaitable<json::object> run(s3_client& c, std::vector<std::string> a) {
  const std::string& op = a[0];
  auto now = [] { return std::chrono::steady_clock::now(); };
  auto t0 = now();
  auto seconds = [&] { return std::chrono::duration<double>(now() - t0).count(); };
  if (op == "mkbucket") {
    auto r = co_await c.create_bucket(a[1]);
    if (!r) co_return error_json(r.error());
    co_return json::object{{"ok", true}};
  }
  if (op == "put") {
    auto f = mapped_file::open_read(a[3]);
    auto meta = meta_from_env();
    part_body body(std::span<const std::byte>(f.data, f.size));
    auto r = co_await c.put_object(a[1], a[2], body, meta);
    if (!r) co_return error_json(r.error());
    co_return json::object{{"ok", true}, {"etag", r.value()}, {"seconds", seconds()}};
  }
  if (op == "mput" || op == "abort-after-parts") {
    auto f = mapped_file::open_read(a[3]);
    std::size_t part = std::stoull(a[4]) << 20;
    auto meta = meta_from_env();
    auto id = co_await c.create_multipart_upload(a[1], a[2], meta);
    if (!id) co_return error_json(id.error());
    std::size_t parts = std::max<std::size_t>(1, (f.size + part - 1) / part);
    if (op == "abort-after-parts") parts = std::min<std::size_t>(parts, std::stoull(a[5]));
    std::vector<completed_part> done_parts(parts);
    std::optional<store_error> failure;
    co_await parallel_for(parts, 8, [&](std::size_t i) -> asio::awaitable<void> {
      std::size_t off = i * part, len = std::min(part, f.size - off);
      part_body body(std::span<const std::byte>(f.data + off, len));
      auto r = co_await c.upload_part(a[1], a[2], id.value(), static_cast<int>(i + 1), body);
      if (!r) failure = r.error();
      else done_parts[i] = {static_cast<int>(i + 1), r.value()};
    });
    if (failure || op == "abort-after-parts") {
      co_await c.abort_multipart_upload(a[1], a[2], id.value());
      if (failure) co_return error_json(*failure);
      co_return json::object{{"ok", true}, {"aborted", id.value()}};
    }
    auto r = co_await c.complete_multipart_upload(a[1], a[2], id.value(), done_parts);
    if (!r) {
      co_await c.abort_multipart_upload(a[1], a[2], id.value());
      co_return error_json(r.error());
    }
    co_return json::object{{"ok", true}, {"etag", r.value()}, {"parts", parts}, {"seconds", seconds()}};
  }
  if (op == "get") {
    auto head = co_await c.head_object(a[1], a[2]);
    if (!head) co_return error_json(head.error());
    auto f = mapped_file::create(a[3], head->size);
    std::size_t part = (a.size() > 4 ? std::stoull(a[4]) : 8) << 20;
    std::size_t parts = (head->size + part - 1) / part;
    std::optional<store_error> failure;
    co_await parallel_for(parts, 8, [&](std::size_t i) -> asio::awaitable<void> {
      std::size_t off = i * part, len = std::min(part, head->size - off);
      get_options opts{off, head->etag, head->version_id};
      auto r = co_await c.get_object(a[1], a[2], std::span<std::byte>(f.data + off, len), opts);
      if (!r) failure = r.error();
    });
    if (failure) co_return error_json(*failure);
    auto out = info_json(head.value());
    out["seconds"] = seconds();
    co_return out;
  }
  if (op == "head") {
    auto r = co_await c.head_object(a[1], a[2]);
    if (!r) co_return error_json(r.error());
    co_return info_json(r.value());
  }
  if (op == "delete") {
    auto r = co_await c.delete_object(a[1], a[2]);
    if (!r) co_return error_json(r.error());
    co_return json::object{{"ok", true}};
  }
  if (op == "list") {
    json::array keys;
    std::string token, prefix = a.size() > 2 ? a[2] : "";
    do {
      auto r = co_await c.list_objects(a[1], prefix, token, 1000);
      if (!r) co_return error_json(r.error());
      for (auto& o : r->objects) keys.push_back(json::value(o.key));
      token = r->next_continuation_token;
    } while (!token.empty());
    co_return json::object{{"ok", true}, {"keys", keys}};
  }
  if (op == "uploads") {
    std::string no_prefix;
    auto r = co_await c.list_multipart_uploads(a[1], no_prefix);
    if (!r) co_return error_json(r.error());
    json::array ups;
    for (auto& u : r.value()) ups.push_back(json::object{{"key", u.key}, {"upload_id", u.upload_id}});
    co_return json::object{{"ok", true}, {"uploads", ups}};
  }
  if (op == "copy") {
    auto r = co_await c.copy_object(a[1], a[2], a[1], a[3]);
    if (!r) co_return error_json(r.error());
    co_return json::object{{"ok", true}, {"etag", r.value()}};
  }
  if (op == "mcopy") {
    auto head = co_await c.head_object(a[1], a[2]);
    if (!head) co_return error_json(head.error());
    auto id = co_await c.create_multipart_upload(a[1], a[3], head.value());
    if (!id) co_return error_json(id.error());
    std::size_t part = std::stoull(a[4]) << 20;
    std::size_t parts = std::max<std::size_t>(1, (head->size + part - 1) / part);
    std::vector<completed_part> done_parts;
    for (std::size_t i = 0; i < parts; ++i) {
      std::uint64_t first = i * part, last = std::min<std::uint64_t>(head->size, first + part) - 1;
      auto r = co_await c.upload_part_copy(a[1], a[2], first, last, a[1], a[3], id.value(), static_cast<int>(i + 1));
      if (!r) {
        co_await c.abort_multipart_upload(a[1], a[3], id.value());
        co_return error_json(r.error());
      }
      done_parts.push_back({static_cast<int>(i + 1), r.value()});
    }
    auto r = co_await c.complete_multipart_upload(a[1], a[3], id.value(), done_parts);
    if (!r) co_return error_json(r.error());
    co_return json::object{{"ok", true}, {"etag", r.value()}};
  }
  if (op == "bench-put" || op == "bench-get") {
    std::size_t count = std::stoull(a[3]), size = std::stoull(a[4]), width = std::stoull(a[5]);
    std::vector<std::byte> payload(size, std::byte{'x'});
    std::vector<std::vector<std::byte>> sinks(width, std::vector<std::byte>(size));
    std::size_t failures = 0, slot = 0;
    co_await parallel_for(count, width, [&](std::size_t i) -> asio::awaitable<void> {
      std::string key = a[2] + std::to_string(i);
      if (op == "bench-put") {
        object_info no_meta;
        part_body body{std::span<const std::byte>(payload)};
        auto r = co_await c.put_object(a[1], key, body, no_meta);
        failures += !r;
      } else {
        auto& sink = sinks[slot++ % width];
        get_options whole;
        auto r = co_await c.get_object(a[1], key, sink, whole);
        failures += !r;
      }
    });
    double s = seconds();
    co_return json::object{{"ok", failures == 0}, {"failures", failures}, {"seconds", s},
                           {"requests_per_second", static_cast<double>(count) / s},
                           {"connections_opened", c.connections_opened()}};
  }
  throw std::runtime_error("unknown op " + op);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 6) {
    std::cerr << "usage: s3_probe ENDPOINT ACCESS SECRET OP ARGS...\n";
    return 2;
  }
  archie::config::s3_store_config cfg;
  cfg.endpoint = argv[1];
  // ACCESS and SECRET "-": the credential chain (AWS_* variables), as a store without keys.
  if (std::string(argv[2]) == "-") {
    cfg.credentials = archie::config::s3_credentials::chain;
  } else {
    cfg.access_key_id = archie::config::secret(argv[2], "argv");
    cfg.secret_access_key = archie::config::secret(argv[3], "argv");
  }
  if (const char* r = std::getenv("S3_REGION")) cfg.region = r;
  if (const char* p = std::getenv("S3_PAYLOAD_SIGNING")) {
    std::string_view v = p;
    cfg.payload_signing = v == "signed"     ? archie::config::payload_signing_mode::signed_payload
                          : v == "unsigned" ? archie::config::payload_signing_mode::unsigned_payload
                                            : archie::config::payload_signing_mode::automatic;
  }
  if (const char* m = std::getenv("S3_MAX_CONNECTIONS")) cfg.max_connections = std::atoi(m);
  if (const char* t = std::getenv("S3_CONNECT_TIMEOUT_MS")) cfg.connect_timeout = std::chrono::milliseconds(std::atoi(t));
  std::vector<std::string> args(argv + 4, argv + argc);
  asio::io_context io(1);
  s3_client client(io.get_executor(), "probe", cfg);
  json::object out;
  int rc = 0;
  asio::co_spawn(io, run(client, args), [&](std::exception_ptr e, json::object r) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        out = {{"ok", false}, {"exception", ex.what()}};
      }
      rc = 1;
    } else {
      out = std::move(r);
    }
  });
  io.run();
  out["connections_opened"] = client.connections_opened();
  std::cout << json::serialize(out) << "\n";
  return rc;
}
