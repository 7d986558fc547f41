// Drives archie's GCS client and destination from the command line so integration tests can
// exercise them against a server (testkit/gcs_server). One operation per run;
// prints one JSON line.
//
//   gcs_probe ENDPOINT CREDENTIALS CRED_ARG OP ARGS...
//   CREDENTIALS: service_account (CRED_ARG: key file) | metadata (CRED_ARG: "-"; the host is
//                GCE_METADATA_HOST or metadata.google.internal) | token (CRED_ARG: the token)
//   ops: put BUCKET KEY FILE PART_MIB      gcs_destination: begin, every part written at once in
//                                          GCS_PART_ORDER (shuffle | reverse | inorder), finish
//        get BUCKET KEY FILE [PART_MIB]    metadata, then ranged downloads in parallel (pinned to
//                                          the generation) into an mmap of FILE
//        stat BUCKET KEY | recorded BUCKET KEY | delete BUCKET KEY | remove BUCKET KEY
//        list BUCKET PREFIX [PAGE_SIZE] | bucket BUCKET
//        put-if-absent BUCKET KEY FILE     upload_object with ifGenerationMatch=0
//        abort-after BUCKET KEY FILE PART_MIB N   resumable: N parts in order, then abort()
//        gap BUCKET KEY FILE PART_MIB WAIT_MS     resumable: parts 1 and 3 only; part 3 must give
//                                          up after WAIT_MS without progress; then abort()
//        stat-loop BUCKET KEY COUNT INTERVAL_MS   COUNT metadata reads, INTERVAL_MS apart
// Env: GCS_CONTENT_TYPE, GCS_CACHE_CONTROL, GCS_CONTENT_DISPOSITION, GCS_CONTENT_ENCODING,
//      GCS_META ("k1=v1;k2=v2"), GCS_PART_ORDER, GCS_MAX_CONNECTIONS.
#include "mapped_file.hpp"
#include "config/config.hpp"
#include "async/wait_group.hpp"
#include "store/gcs/gcs_client.hpp"
#include "store/gcs/gcs_destination.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <numeric>
#include <random>

namespace asio = boost::asio;
namespace json = boost::json;
using namespace archie::store;
using namespace archie::store::gcs;

namespace {

using archie::tools::mapped_file;


json::object error_json(const store_error& e) {
  json::object o;
  o["ok"] = false;
  o["kind"] = to_string(e.kind);
  o["status"] = e.http_status;
  o["code"] = e.code;
  o["message"] = e.message;
  o["operation"] = e.operation;
  o["bucket"] = e.bucket;
  o["key"] = e.key;
  o["request_id"] = e.request_id;
  o["describe"] = e.describe();
  return o;
}

json::object info_json(const object_metadata& m) {
  json::object meta;
  for (const auto& [k, v] : m.info.user_metadata) meta[k] = v;
  json::object o;
  o["ok"] = true;
  o["size"] = m.info.size;
  o["etag"] = m.info.etag;
  o["json_etag"] = m.json_etag;
  o["generation"] = m.generation;
  o["metageneration"] = m.metageneration;
  o["md5"] = m.md5_base64;
  o["crc32c"] = m.crc32c_base64;
  o["version_id"] = m.info.version_id;
  o["content_type"] = m.info.content_type;
  o["content_encoding"] = m.info.content_encoding;
  o["content_disposition"] = m.info.content_disposition;
  o["cache_control"] = m.info.cache_control;
  o["last_modified"] = m.info.last_modified;
  o["metadata"] = std::move(meta);
  return o;
}

json::object ok_json() {
  json::object o;
  o["ok"] = true;
  return o;
}

object_info meta_from_env() {
  object_info m;
  if (const char* v = std::getenv("GCS_CONTENT_TYPE")) m.content_type = v;
  if (const char* v = std::getenv("GCS_CACHE_CONTROL")) m.cache_control = v;
  if (const char* v = std::getenv("GCS_CONTENT_DISPOSITION")) m.content_disposition = v;
  if (const char* v = std::getenv("GCS_CONTENT_ENCODING")) m.content_encoding = v;
  if (const char* v = std::getenv("GCS_META")) {  // "k1=v1;k2=v2"
    std::string s = v;
    std::size_t pos = 0;
    while (pos < s.size()) {
      auto end = s.find(';', pos);
      auto item = s.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
      if (auto eq = item.find('='); eq != std::string::npos)
        m.user_metadata.emplace_back(item.substr(0, eq), item.substr(eq + 1));
      if (end == std::string::npos) break;
      pos = end + 1;
    }
  }
  return m;
}

std::vector<std::size_t> part_order(std::size_t parts) {
  std::vector<std::size_t> order(parts);
  std::iota(order.begin(), order.end(), 0);
  std::string how = std::getenv("GCS_PART_ORDER") ? std::getenv("GCS_PART_ORDER") : "shuffle";
  if (how == "reverse") std::reverse(order.begin(), order.end());
  else if (how == "shuffle") std::shuffle(order.begin(), order.end(), std::mt19937_64{std::random_device{}()});
  return order;
}

// Runs fn(i) for i in [0, n) with at most `width` in flight.
template <class Fn>
asio::awaitable<void> parallel_for(std::size_t n, std::size_t width, Fn& fn) {
  auto ex = co_await asio::this_coro::executor;
  archie::async::wait_group group(ex);
  std::size_t next = 0;
  auto worker = [&]() -> asio::awaitable<void> {
    while (next < n) {
      std::size_t i = next++;
      co_await fn(i);
    }
    group.done();
  };
  std::size_t w = std::min(width, n);
  group.add(w);
  for (std::size_t k = 0; k < w; ++k) asio::co_spawn(ex, worker(), asio::detached);
  co_await group.wait();
}

struct run_context {
  gcs_client& client;
  gcs_destination& dest;
  std::vector<std::string> a;
  std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
  double seconds() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); }
};

// put: what the pipe does, but with the parts arriving in a scrambled order.
asio::awaitable<json::object> op_put(run_context& ctx) {
  auto& a = ctx.a;
  auto f = mapped_file::open_read(a[3]);
  std::size_t part = std::stoull(a[4]) << 20;
  auto meta = meta_from_env();
  auto up = co_await ctx.dest.begin(a[1], a[2], meta, f.size, part, upload_options{});
  if (!up) co_return error_json(up.error());
  auto& u = *up.value();
  std::size_t parts = f.size == 0 ? 1 : (f.size + part - 1) / part;
  auto order = part_order(parts);
  std::optional<store_error> failure;
  auto ex = co_await asio::this_coro::executor;
  archie::async::wait_group group(ex);
  std::mt19937_64 rng{std::random_device{}()};
  auto writer = [&](std::size_t i, int delay_ms) -> asio::awaitable<void> {
    asio::steady_timer jitter(ex, std::chrono::milliseconds(delay_ms));
    co_await jitter.async_wait(asio::use_awaitable);
    std::size_t off = i * part, len = std::min(part, f.size - off);
    part_body body(std::span<const std::byte>(f.data + off, len));
    auto r = co_await u.write_part(static_cast<int>(i + 1), off, body);
    if (!r && !failure) failure = r.error();
    group.done();
  };
  group.add(parts);
  for (std::size_t k = 0; k < parts; ++k)
    asio::co_spawn(ex, writer(order[k], static_cast<int>(rng() % 20)), asio::detached);
  co_await group.wait();
  if (failure) {
    co_await u.abort();
    co_return error_json(*failure);
  }
  auto fin = co_await u.finish();
  if (!fin) {
    co_await u.abort();
    co_return error_json(fin.error());
  }
  json::object out = ok_json();
  out["parts"] = parts;
  out["seconds"] = ctx.seconds();
  co_return out;
}

asio::awaitable<json::object> op_get(run_context& ctx) {
  auto& a = ctx.a;
  auto& c = ctx.client;
  auto head = co_await c.get_object_metadata(a[1], a[2]);
  if (!head) co_return error_json(head.error());
  auto f = mapped_file::create(a[3], head->info.size);
  std::size_t part = (a.size() > 4 ? std::stoull(a[4]) : 8) << 20;
  std::size_t parts = (head->info.size + part - 1) / part;
  std::optional<store_error> failure;
  std::optional<object_metadata> first;
  auto fetch = [&](std::size_t i) -> asio::awaitable<void> {
    std::size_t off = i * part, len = std::min<std::size_t>(part, head->info.size - off);
    download_options opts;
    opts.offset = off;
    opts.if_generation_match = head->generation;
    auto r = co_await c.download(a[1], a[2], std::span<std::byte>(f.data + off, len), opts);
    if (!r && !failure) failure = r.error();
    if (r && i == 0) first = r.value();
  };
  co_await parallel_for(parts, 8, fetch);
  if (failure) co_return error_json(*failure);
  auto out = info_json(head.value());
  if (first) out["download"] = info_json(*first);
  out["seconds"] = ctx.seconds();
  co_return out;
}

asio::awaitable<json::object> op_resumable_partial(run_context& ctx, bool gap) {
  auto& a = ctx.a;
  auto f = mapped_file::open_read(a[3]);
  std::size_t part = std::stoull(a[4]) << 20;
  auto meta = meta_from_env();
  auto up = co_await ctx.dest.begin(a[1], a[2], meta, f.size, part, upload_options{});
  if (!up) co_return error_json(up.error());
  auto& u = *up.value();
  json::object out = ok_json();
  if (!gap) {
    std::size_t n = std::stoull(a[5]);
    for (std::size_t i = 0; i < n; ++i) {
      std::size_t off = i * part, len = std::min(part, f.size - off);
      part_body body(std::span<const std::byte>(f.data + off, len));
      auto r = co_await u.write_part(static_cast<int>(i + 1), off, body);
      if (!r) {
        co_await u.abort();
        co_return error_json(r.error());
      }
    }
    co_await u.abort();
    out["aborted_after"] = n;
    co_return out;
  }
  // Part 1 goes up; part 3 arrives but part 2 never does.
  part_body first(std::span<const std::byte>(f.data, part));
  auto r1 = co_await u.write_part(1, 0, first);
  if (!r1) co_return error_json(r1.error());
  std::size_t off3 = 2 * part, len3 = std::min(part, f.size - off3);
  part_body third(std::span<const std::byte>(f.data + off3, len3));
  auto r3 = co_await u.write_part(3, off3, third);
  co_await u.abort();
  if (r3) {
    out["ok"] = false;
    out["message"] = "part 3 was written without part 2";
    co_return out;
  }
  out = error_json(r3.error());
  out["waited_seconds"] = ctx.seconds();
  co_return out;
}

asio::awaitable<json::object> run(run_context& ctx) {
  auto& a = ctx.a;
  auto& c = ctx.client;
  const std::string& op = a[0];
  if (op == "put") co_return co_await op_put(ctx);
  if (op == "get") co_return co_await op_get(ctx);
  if (op == "abort-after") co_return co_await op_resumable_partial(ctx, false);
  if (op == "gap") co_return co_await op_resumable_partial(ctx, true);
  if (op == "stat") {
    auto r = co_await c.get_object_metadata(a[1], a[2]);
    if (!r) co_return error_json(r.error());
    co_return info_json(r.value());
  }
  if (op == "recorded") {
    auto r = co_await ctx.dest.recorded_source_etag(a[1], a[2]);
    if (!r) co_return error_json(r.error());
    json::object out = ok_json();
    out["source_etag"] = r.value();
    co_return out;
  }
  if (op == "delete") {
    preconditions none;
    auto r = co_await c.delete_object(a[1], a[2], none);
    if (!r) co_return error_json(r.error());
    co_return ok_json();
  }
  if (op == "remove") {
    auto r = co_await ctx.dest.remove(a[1], a[2]);
    if (!r) co_return error_json(r.error());
    co_return ok_json();
  }
  if (op == "bucket") {
    auto r = co_await ctx.dest.check_bucket(a[1]);
    if (!r) co_return error_json(r.error());
    co_return ok_json();
  }
  if (op == "list") {
    json::array names;
    std::string token, prefix = a.size() > 2 ? a[2] : "";
    int page_size = a.size() > 3 ? std::stoi(a[3]) : 1000;
    int pages = 0;
    do {
      auto r = co_await c.list_objects(a[1], prefix, token, page_size);
      if (!r) co_return error_json(r.error());
      ++pages;
      for (auto& o : r->objects) names.push_back(json::value(o.name));
      token = r->next_page_token;
    } while (!token.empty());
    json::object out = ok_json();
    out["names"] = std::move(names);
    out["pages"] = pages;
    co_return out;
  }
  if (op == "put-if-absent") {
    auto f = mapped_file::open_read(a[3]);
    auto meta = meta_from_env();
    preconditions absent;
    absent.if_generation_match = 0;
    auto r = co_await c.upload_object(a[1], a[2], std::span<const std::byte>(f.data, f.size), meta, absent);
    if (!r) co_return error_json(r.error());
    co_return info_json(r.value());
  }
  if (op == "stat-loop") {
    int count = std::stoi(a[3]), interval = std::stoi(a[4]);
    auto ex = co_await asio::this_coro::executor;
    json::array errors;
    int ok = 0;
    for (int i = 0; i < count; ++i) {
      if (i) {
        asio::steady_timer pause(ex, std::chrono::milliseconds(interval));
        co_await pause.async_wait(asio::use_awaitable);
      }
      auto r = co_await c.get_object_metadata(a[1], a[2]);
      if (r) ++ok;
      else errors.push_back(json::value(r.error().describe()));
    }
    json::object out = ok_json();
    out["ok"] = errors.empty();
    out["succeeded"] = ok;
    out["errors"] = std::move(errors);
    co_return out;
  }
  throw std::runtime_error("unknown op " + op);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 6) {
    std::cerr << "usage: gcs_probe ENDPOINT CREDENTIALS CRED_ARG OP ARGS...\n";
    return 2;
  }
  archie::config::gcs_store_config cfg;
  cfg.endpoint = argv[1];
  std::string_view kind = argv[2];
  using archie::config::gcs_credentials;
  cfg.credentials = kind == "service_account" ? gcs_credentials::service_account
                    : kind == "token"         ? gcs_credentials::token
                                              : gcs_credentials::metadata;
  if (cfg.credentials == gcs_credentials::service_account) cfg.service_account_file = argv[3];
  else if (cfg.credentials == gcs_credentials::token) cfg.token = archie::config::secret(argv[3], "argv");
  if (const char* m = std::getenv("GCS_MAX_CONNECTIONS")) cfg.max_connections = std::atoi(m);
  destination_options dopts;
  if (std::string(argv[4]) == "gap")  // its last argument is the wait limit
    dopts.part_wait_timeout = std::chrono::milliseconds(std::atoi(argv[argc - 1]));

  asio::io_context io(1);
  asio::thread_pool blocking(1);
  gcs_client client(io.get_executor(), "probe", cfg, &blocking);
  gcs_destination dest(client, dopts);
  run_context ctx{client, dest, std::vector<std::string>(argv + 4, argv + argc)};
  json::object out;
  int rc = 0;
  asio::co_spawn(io, run(ctx), [&](std::exception_ptr e, json::object r) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        out = json::object{{"ok", false}, {"exception", ex.what()}};
      }
      rc = 1;
    } else {
      out = std::move(r);
    }
  });
  io.run();
  blocking.join();
  out["connections_opened"] = client.connections_opened();
  out["token_fetches"] = client.token_fetches();
  out["credential_source"] = client.credential_source();
  std::cout << json::serialize(out) << "\n";
  return rc;
}
