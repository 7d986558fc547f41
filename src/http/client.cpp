#include "http/client.hpp"

#include "http/ascii_case.hpp"
#include "http/proxy.hpp"
#include "log/logger.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/channel.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <deque>
#include <memory>
#include <optional>
#include <unordered_set>
#include <variant>

namespace archie::http {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using steady = std::chrono::steady_clock;

namespace {

constexpr std::size_t max_small_body = 64 * 1024 * 1024;  // 2xx answers read into memory (listings)
// Error answers are read up to this much and the connection is then dropped, so a proxy that
// answers a part upload with a huge error page cannot break the memory bound.
constexpr std::size_t max_error_body = 64 * 1024;
constexpr int max_interim_responses = 8;  // 100 Continue, 103 Early Hints...

// A body must move at least this fast on average. io_timeout bounds each read or write step
// (an idle peer); this bounds the whole transfer, so a peer that trickles a byte now and
// then cannot hold a request, its connection and its part buffer for ever.
constexpr std::uint64_t min_transfer_bytes_per_second = 64 * 1024;

std::chrono::milliseconds transfer_allowance(std::uint64_t bytes) {
  return std::chrono::milliseconds(bytes * 1000 / min_transfer_bytes_per_second);
}

// One DNS resolution. The resolver runs getaddrinfo on a thread of its own and cannot be
// interrupted, so the state lives apart from the waiting coroutine: on timeout the waiter
// leaves and the late answer lands here, harmlessly.
struct resolution {
  explicit resolution(asio::any_io_executor ex) : resolver(ex), deadline(ex) {}
  tcp::resolver resolver;
  asio::steady_timer deadline;
  boost::system::error_code ec;
  tcp::resolver::results_type results;
  bool done = false;
};

using tls_stream = beast::ssl_stream<beast::tcp_stream>;

struct connection {
  std::variant<beast::tcp_stream, tls_stream> stream;
  beast::flat_buffer buffer;
  steady::time_point last_used = steady::now();

  template <class Fn>
  decltype(auto) visit(Fn&& fn) {
    return std::visit(std::forward<Fn>(fn), stream);
  }
  beast::tcp_stream& tcp_layer() {
    if (auto* t = std::get_if<beast::tcp_stream>(&stream)) return *t;
    return beast::get_lowest_layer(std::get<tls_stream>(stream));
  }
  // Pending reads and writes end with operation_aborted.
  void close() {
    boost::system::error_code ignored;
    tcp_layer().socket().close(ignored);
  }
};

}  // namespace

struct client::impl : std::enable_shared_from_this<client::impl> {
  asio::any_io_executor executor;
  endpoint ep;
  client_options opts;
  std::optional<ssl::context> tls_ctx;
  // A token per allowed connection: receiving one is the right to hold a connection.
  asio::experimental::channel<void(boost::system::error_code)> tokens;
  std::deque<std::unique_ptr<connection>> idle;
  std::unordered_set<connection*> busy;  ///< connections with a request on them (abort_all closes them)
  bool aborted = false;
  std::size_t opened = 0;

  std::optional<proxy> via;  ///< the proxy every connection goes through (HTTPS_PROXY / HTTP_PROXY)

  impl(asio::any_io_executor ex, endpoint e, client_options o)
      : executor(ex), ep(std::move(e)), opts(std::move(o)), tokens(ex, opts.max_connections) {
    via = proxy_for(process_proxies(), ep);
    [[maybe_unused]] static const bool problems_told = [] {
      for (const auto& p : process_proxies().problems) log::warn("proxy setting ignored", {{"reason", p}});
      return true;
    }();
    if (via)
      log::info("connecting through a proxy",
                {{"endpoint", where()}, {"proxy", via->host + ":" + std::to_string(via->port)},
                 {"mode", ep.tls ? "CONNECT tunnel" : "absolute-form requests"}});
    for (std::size_t i = 0; i < opts.max_connections; ++i) tokens.try_send(boost::system::error_code{});
    if (ep.tls) {
      tls_ctx.emplace(ssl::context::tls_client);
      tls_ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                           ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
      if (opts.ca_file.empty()) tls_ctx->set_default_verify_paths();
      else tls_ctx->load_verify_file(opts.ca_file);
      tls_ctx->set_verify_mode(opts.verify_tls ? ssl::verify_peer : ssl::verify_none);
    }
  }

  // "host:port", and the proxy when there is one (never its credentials).
  std::string where() const {
    std::string w = ep.host + ":" + std::to_string(ep.port);
    return via ? w + " via " + via->describe() : w;
  }

  transport_error not_sent(const request& req) const {
    return transport_error{asio::error::operation_aborted, req.method + " " + where() + ": not sent (shutting down)", false};
  }

  void abort_all() {
    aborted = true;
    idle.clear();
    for (connection* c : busy) c->close();
  }

  // Shutdown, or the request's group was cut: nothing more may be sent or read for it.
  bool stopped(const cut_group* cut) const { return aborted || (cut && cut->is_cut()); }

  asio::awaitable<boost::system::result<std::unique_ptr<connection>, transport_error>> open() {
    // Resolved for every new connection, so a moved endpoint is followed without restart;
    // bounded by connect_timeout, since a stuck DNS server would otherwise hold the slot.
    auto dns = std::make_shared<resolution>(executor);
    // Through a proxy, the proxy resolves the endpoint's name; archie resolves only the proxy.
    const std::string& connect_host = via ? via->host : ep.host;
    const std::uint16_t connect_port = via ? via->port : ep.port;
    dns->resolver.async_resolve(connect_host, std::to_string(connect_port),
                                [dns](boost::system::error_code ec, tcp::resolver::results_type r) {
                                  dns->ec = ec;
                                  dns->results = std::move(r);
                                  dns->done = true;
                                  dns->deadline.cancel();
                                });
    dns->deadline.expires_after(opts.connect_timeout);
    co_await dns->deadline.async_wait(asio::as_tuple(asio::use_awaitable));
    if (!dns->done) {
      dns->resolver.cancel();
      co_return transport_error{asio::error::timed_out, "resolve " + where() + ": timed out after " +
                                                            std::to_string(opts.connect_timeout.count()) + " ms", false};
    }
    if (dns->ec) co_return transport_error{dns->ec, "resolve " + where() + ": " + dns->ec.message(), false};
    auto results = dns->results;
    beast::tcp_stream tcp_s(executor);
    tcp_s.expires_after(opts.connect_timeout);
    auto [cec, _] = co_await tcp_s.async_connect(results, asio::as_tuple(asio::use_awaitable));
    if (cec) co_return transport_error{cec, "connect " + where() + ": " + cec.message(), false};
    tcp_s.socket().set_option(tcp::no_delay(true));
    ++opened;
    if (!ep.tls) co_return std::make_unique<connection>(connection{std::move(tcp_s), {}, steady::now()});
    if (via) {
      if (auto refused = co_await open_tunnel(tcp_s)) co_return *refused;
    }

    tls_stream s(std::move(tcp_s), *tls_ctx);
    if (!SSL_set_tlsext_host_name(s.native_handle(), ep.host.c_str()))
      co_return transport_error{{}, "TLS SNI for " + ep.host + " failed", false};
    if (opts.verify_tls) s.set_verify_callback(ssl::host_name_verification(ep.host));
    beast::get_lowest_layer(s).expires_after(opts.connect_timeout);
    auto [hec] = co_await s.async_handshake(ssl::stream_base::client, asio::as_tuple(asio::use_awaitable));
    if (hec) co_return transport_error{hec, "TLS handshake with " + where() + ": " + hec.message(), false};
    co_return std::make_unique<connection>(connection{std::move(s), {}, steady::now()});
  }

  // CONNECT host:port through the proxy; the TLS handshake then runs end to end over it.
  asio::awaitable<std::optional<transport_error>> open_tunnel(beast::tcp_stream& tcp_s) {
    // host:port always (the port even when it is the scheme's default), IPv6 in brackets.
    const bool v6 = ep.host.find(':') != std::string::npos;
    const std::string authority = (v6 ? "[" + ep.host + "]" : ep.host) + ":" + std::to_string(ep.port);
    bhttp::request<bhttp::empty_body> connect{bhttp::verb::connect, authority, 11};
    connect.set(bhttp::field::host, authority);
    if (!via->authorization.empty()) connect.set(bhttp::field::proxy_authorization, via->authorization);
    tcp_s.expires_after(opts.connect_timeout);
    auto [wec, wn] = co_await bhttp::async_write(tcp_s, connect, asio::as_tuple(asio::use_awaitable));
    if (wec) co_return transport_error{wec, "CONNECT " + where() + ": " + wec.message(), false};
    beast::flat_buffer buffer;
    bhttp::response_parser<bhttp::empty_body> answer;
    answer.skip(true);  // a 2xx answer to CONNECT has no body: the tunnel starts right after it
    auto [rec, rn] = co_await bhttp::async_read_header(tcp_s, buffer, answer, asio::as_tuple(asio::use_awaitable));
    if (rec) co_return transport_error{rec, "CONNECT " + where() + ": " + rec.message(), false};
    const unsigned status = answer.get().result_int();
    if (status / 100 != 2)
      co_return transport_error{asio::error::connection_refused,
                                "CONNECT " + where() + ": the proxy answered " + std::to_string(status) + " " +
                                    std::string(answer.get().reason()) +
                                    (status == 407 ? " (check the user and password in HTTPS_PROXY)" : ""),
                                false};
    if (buffer.size() != 0)
      co_return transport_error{asio::error::invalid_argument,
                                "CONNECT " + where() + ": the proxy sent bytes before the TLS handshake", false};
    co_return std::nullopt;
  }

  // Each step waits at most io_timeout, and never past the transfer's overall deadline.
  void arm(connection& c, steady::time_point overall) const {
    c.tcp_layer().expires_at(std::min(steady::now() + opts.io_timeout, overall));
  }

  // Reads exactly into.size() body bytes: first what the header read left in the buffer,
  // then straight from the socket into the caller's memory.
  asio::awaitable<boost::system::error_code> read_fixed_body(connection& c, std::span<std::byte> into,
                                                             steady::time_point overall) {
    std::size_t have = std::min(c.buffer.size(), into.size());
    if (have) {
      std::memcpy(into.data(), c.buffer.data().data(), have);
      c.buffer.consume(have);
    }
    std::size_t pos = have;
    while (pos < into.size()) {
      arm(c, overall);
      auto chunk = asio::buffer(into.data() + pos, into.size() - pos);
      auto [ec, n] = co_await c.visit([&](auto& s) { return s.async_read_some(chunk, asio::as_tuple(asio::use_awaitable)); });
      if (ec) co_return ec;
      pos += n;
    }
    co_return boost::system::error_code{};
  }

  // A body under a bandwidth budget: the header, then the body a chunk at a time, each
  // chunk waiting for its bytes in the budget. Content-Length framing, so the raw bytes
  // follow the header as they are; each chunk gets the whole I/O timeout.
  asio::awaitable<std::optional<transport_error>> write_paced(connection& c, const request& req,
                                                              bhttp::request_serializer<bhttp::buffer_body>& sr,
                                                              std::size_t chunk) {
    c.tcp_layer().expires_after(opts.io_timeout);
    auto [hec, hn] = co_await c.visit([&](auto& s) { return bhttp::async_write_header(s, sr, asio::as_tuple(asio::use_awaitable)); });
    if (hec) co_return transport_error{hec, req.method + " " + where() + ": send failed: " + hec.message(), false};
    for (std::size_t pos = 0; pos < req.body.size();) {
      const std::size_t n = std::min(chunk, req.body.size() - pos);
      co_await opts.budget->before_body_bytes(n);
      c.tcp_layer().expires_after(opts.io_timeout);
      auto piece = asio::buffer(req.body.data() + pos, n);
      auto [wec, wn] = co_await c.visit([&](auto& s) { return asio::async_write(s, piece, asio::as_tuple(asio::use_awaitable)); });
      if (wec) co_return transport_error{wec, req.method + " " + where() + ": send failed: " + wec.message(), true};
      pos += n;
    }
    co_return std::nullopt;
  }

  asio::awaitable<send_result> exchange(connection& c, const request& req,
                                                                    std::span<std::byte> into, bool& reusable) {
    reusable = false;
    bhttp::request<bhttp::buffer_body> r;
    r.method_string(req.method);
    // Plain http through a proxy: the absolute form names the server (the Host header and
    // the signature over it stay the same).
    const bool absolute = via && !ep.tls;
    r.target(absolute ? "http://" + ep.host_header() + req.target : req.target);
    r.version(11);
    r.set(bhttp::field::host, ep.host_header());
    if (absolute && !via->authorization.empty()) r.set(bhttp::field::proxy_authorization, via->authorization);
    for (const auto& [k, v] : req.headers) r.set(k, v);
    r.body().data = const_cast<std::byte*>(req.body.data());  // buffer_body is read-only on the send side
    r.body().size = req.body.size();
    r.body().more = false;
    if (!req.body.empty() || req.method == "PUT" || req.method == "POST") r.content_length(req.body.size());
    r.keep_alive(true);

    bhttp::request_serializer<bhttp::buffer_body> sr(r);
    const std::size_t chunk = opts.budget && !req.body.empty() ? opts.budget->body_chunk() : 0;
    if (chunk == 0) {
      c.tcp_layer().expires_after(opts.io_timeout + transfer_allowance(req.body.size()));
      auto [wec, wn] = co_await c.visit([&](auto& s) { return bhttp::async_write(s, sr, asio::as_tuple(asio::use_awaitable)); });
      if (wec) co_return transport_error{wec, req.method + " " + where() + ": send failed: " + wec.message(), false};
    } else if (auto failed = co_await write_paced(c, req, sr, chunk)) {
      co_return *failed;
    }

    // Interim answers (100 Continue, 103 Early Hints) precede the real one on the same
    // connection: skip them, or the real answer would be left unread in a pooled connection.
    std::optional<bhttp::response_parser<bhttp::buffer_body>> parser;
    for (int interim = 0;; ++interim) {
      parser.emplace();
      parser->body_limit(boost::none);
      if (req.method == "HEAD") parser->skip(true);
      c.tcp_layer().expires_after(opts.io_timeout);
      auto& pr = *parser;
      auto [hec, hn] = co_await c.visit([&](auto& s) { return bhttp::async_read_header(s, c.buffer, pr, asio::as_tuple(asio::use_awaitable)); });
      if (hec) co_return transport_error{hec, req.method + " " + where() + ": no response: " + hec.message(), true};
      unsigned status = parser->get().result_int();
      if (status < 100 || status >= 200 || status == 101) break;
      if (interim + 1 >= max_interim_responses)
        co_return transport_error{{}, req.method + " " + where() + ": too many interim responses", true, true};
    }
    auto& p = *parser;

    response out;
    auto& msg = p.get();
    out.status = static_cast<int>(msg.result_int());
    bool error_answer = out.status < 200 || out.status >= 300;
    bool truncated = false;
    for (const auto& f : msg) out.headers.emplace_back(ascii_lower(f.name_string()), std::string(f.value()));
    bool to_caller = !into.empty() && out.status >= 200 && out.status < 300;

    if (!p.is_done()) {
      auto length = p.content_length();
      if (length && !p.chunked()) {
        std::span<std::byte> target;
        out.body_length = *length;
        if (to_caller) {
          bool fits = *length == into.size() || (req.body_may_end_early && *length < into.size()) ||
                      (req.body_may_continue && *length > into.size());
          if (!fits)
            co_return transport_error{{}, req.method + " " + where() + ": body is " + std::to_string(*length) +
                                              " bytes, expected " + std::to_string(into.size()), true};
          target = into.first(static_cast<std::size_t>(std::min<std::uint64_t>(*length, into.size())));
        } else if (error_answer && *length > max_error_body) {
          out.body.resize(max_error_body);  // enough to read the error code; the rest is dropped
          target = std::as_writable_bytes(std::span(out.body));
          truncated = true;
        } else {
          if (*length > max_small_body)
            co_return transport_error{{}, req.method + " " + where() + ": unexpected " + std::to_string(*length) +
                                              "-byte body", true};
          out.body.resize(*length);
          target = std::as_writable_bytes(std::span(out.body));
        }
        auto ec = co_await read_fixed_body(c, target, steady::now() + opts.io_timeout + transfer_allowance(target.size()));
        if (ec) co_return transport_error{ec, req.method + " " + where() + ": body read failed: " + ec.message(), true, true};
        if (to_caller) out.body_bytes = target.size();
      } else {
        // Chunked or close-delimited: rare for S3/GCS data; go through the parser. Bounded as
        // if the whole room were coming.
        const auto overall = steady::now() + opts.io_timeout +
                             transfer_allowance(to_caller ? into.size() : std::uint64_t{4} << 20);
        std::size_t filled = 0;
        std::string& sink = out.body;
        while (!p.is_done()) {
          std::byte* base;
          std::size_t room;
          if (to_caller) {
            base = into.data() + filled;
            room = into.size() - filled;
            if (room == 0) co_return transport_error{{}, req.method + " " + where() + ": body larger than buffer", true};
          } else {
            if (error_answer && filled >= max_error_body) {
              truncated = true;
              break;
            }
            if (sink.size() - filled < 64 * 1024) sink.resize(filled + 256 * 1024);
            if (sink.size() > max_small_body) co_return transport_error{{}, "response body too large", true};
            base = reinterpret_cast<std::byte*>(sink.data()) + filled;
            room = sink.size() - filled;
          }
          p.get().body().data = base;
          p.get().body().size = room;
          arm(c, overall);
          auto [ec, n] = co_await c.visit([&](auto& s) { return bhttp::async_read(s, c.buffer, p, asio::as_tuple(asio::use_awaitable)); });
          if (ec == bhttp::error::need_buffer) ec = {};
          if (ec) co_return transport_error{ec, req.method + " " + where() + ": body read failed: " + ec.message(), true, true};
          filled += room - p.get().body().size;
        }
        if (to_caller) out.body_bytes = filled;
        else sink.resize(filled);
        out.body_length = filled;
        if (to_caller && filled != into.size() && !req.body_may_end_early)
          co_return transport_error{{}, req.method + " " + where() + ": short body", true};
      }
    }
    reusable = msg.keep_alive() && !truncated;  // unread bytes would corrupt the next exchange
    co_return out;
  }

  asio::awaitable<send_result> send(const request& req, std::span<std::byte> into) {
    if (stopped(req.cut)) co_return not_sent(req);
    co_await tokens.async_receive(asio::use_awaitable);
    struct token_guard {
      impl* self;
      bool handed_over = false;  ///< to a body_rest, which gives the token back
      ~token_guard() {
        if (!handed_over) self->tokens.try_send(boost::system::error_code{});
      }
    } guard{this};
    if (stopped(req.cut)) co_return not_sent(req);

    // A pooled connection may have been closed by the server while idle; if it fails before
    // any response byte arrives, retry once on a fresh connection: the request never ran.
    for (int attempt = 0;; ++attempt) {
      if (opts.budget) {
        co_await opts.budget->before_request();
        if (stopped(req.cut)) co_return not_sent(req);
      }
      std::unique_ptr<connection> c;
      bool pooled = false;
      while (!idle.empty() && !c) {
        c = std::move(idle.back());
        idle.pop_back();
        if (steady::now() - c->last_used > opts.idle_keepalive) c.reset();
      }
      if (c) {
        pooled = true;
      } else {
        auto opened_conn = co_await open();
        if (!opened_conn) co_return opened_conn.error();
        c = std::move(*opened_conn);
      }
      // Opening a connection takes time (DNS, connect, TLS): the group may have been cut
      // meanwhile, and this request must not start after it.
      if (stopped(req.cut)) co_return not_sent(req);
      bool reusable = false;
      busy.insert(c.get());
      struct busy_guard {
        impl* self;
        connection* c;
        cut_group* group;
        std::optional<cut_group::registration> in_group;
        bool handed_over = false;  ///< the connection stays busy, now a body_rest's
        ~busy_guard() {
          if (!handed_over) self->busy.erase(c);
          if (in_group) group->leave(*in_group);
        }
      } on_exchange{this, c.get(), req.cut, std::nullopt};
      if (req.cut)
        on_exchange.in_group = req.cut->enter([conn = c.get()] { conn->close(); });
      auto result = co_await exchange(*c, req, into, reusable);
      const bool group_cut = req.cut && req.cut->is_cut();
      if ((aborted || group_cut) && !result) {
        transport_error cut = result.error();
        cut.ec = asio::error::operation_aborted;  // whatever the closed socket reported
        cut.what += aborted ? " (cut by shutdown)" : " (cut: the copy was cancelled)";
        co_return cut;
      }
      if (group_cut) reusable = false;  // its socket may be closed under the answer
      if (!result) {
        const transport_error err = result.error();
        bool stale = pooled && attempt == 0 && !err.response_started &&
                     (err.ec == bhttp::error::end_of_stream || err.ec == asio::error::connection_reset ||
                      err.ec == asio::error::broken_pipe || err.ec == asio::error::eof);
        if (stale) continue;
        co_return result;
      }
      response& answer = *result;
      if (req.body_may_continue && !into.empty() && answer.status / 100 == 2 &&
          answer.body_length > answer.body_bytes) {
        // The rest of the body stays on this connection, which stays checked out with it.
        guard.handed_over = on_exchange.handed_over = true;
        answer.rest = std::make_shared<rest_reader>(shared_from_this(), std::move(c),
                                                     answer.body_length - answer.body_bytes, reusable,
                                                     req.method + " " + where());
        co_return result;
      }
      if (reusable) put_back(std::move(c));
      co_return result;
    }
  }

  void put_back(std::unique_ptr<connection> c) {
    c->last_used = steady::now();
    idle.push_back(std::move(c));
  }

  // The rest of a body, read piece by piece on the connection its header came on.
  struct rest_reader final : body_rest {
    std::shared_ptr<impl> owner;
    std::unique_ptr<connection> c;  ///< null once given back (or closed)
    std::uint64_t left;
    bool reusable;
    std::string what;  ///< "GET host:port", for errors

    rest_reader(std::shared_ptr<impl> o, std::unique_ptr<connection> conn, std::uint64_t n, bool reuse, std::string w)
        : owner(std::move(o)), c(std::move(conn)), left(n), reusable(reuse), what(std::move(w)) {}
    ~rest_reader() override { release(false); }

    // Gives the connection back: to the pool when the body was read to its end, else closed
    // (unread bytes would corrupt the next exchange).
    void release(bool to_pool) {
      if (!c) return;
      owner->busy.erase(c.get());
      if (to_pool && !owner->aborted) owner->put_back(std::move(c));
      c.reset();
      owner->tokens.try_send(boost::system::error_code{});
    }

    std::uint64_t remaining() const override { return left; }

    asio::awaitable<std::optional<transport_error>> read(std::span<std::byte> into, cut_group* cut) override {
      auto self = owner;  // the pool outlives this read
      if (into.size() > left)
        co_return transport_error{asio::error::invalid_argument,
                                  what + ": " + std::to_string(into.size()) + " bytes asked, " +
                                      std::to_string(left) + " left in the body", true, true};
      if (!c || owner->stopped(cut)) {
        release(false);
        co_return transport_error{asio::error::operation_aborted, what + ": body read cut", true, true};
      }
      std::optional<cut_group::registration> in_group;
      if (cut) in_group = cut->enter([conn = c.get()] { conn->close(); });
      auto ec = co_await owner->read_fixed_body(*c, into, steady::now() + owner->opts.io_timeout +
                                                               transfer_allowance(into.size()));
      if (in_group) cut->leave(*in_group);
      const bool cut_short = owner->stopped(cut);
      if (ec || cut_short) {
        release(false);
        if (cut_short) ec = asio::error::operation_aborted;  // whatever the closed socket reported
        co_return transport_error{ec, what + ": body read failed: " + ec.message(), true, true};
      }
      left -= into.size();
      if (left == 0) release(reusable);
      co_return std::nullopt;
    }
  };
};

client::client(asio::any_io_executor executor, endpoint ep, client_options opts)
    : impl_(std::make_shared<impl>(executor, std::move(ep), std::move(opts))) {}

client::~client() = default;

asio::awaitable<send_result> client::send(const request& req, std::span<std::byte> into) {
  auto self = impl_;  // keep the pool alive while the request runs
  co_return co_await self->send(req, into);
}

const endpoint& client::target() const { return impl_->ep; }
void client::abort_all() { impl_->abort_all(); }
std::size_t client::connections_opened() const { return impl_->opened; }

}  // namespace archie::http
