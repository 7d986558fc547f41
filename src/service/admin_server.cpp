#include "service/admin_server.hpp"

#include "fleet/status_page.hpp"
#include "log/logger.hpp"
#include "metrics/registry.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <prometheus/counter.h>

#include <chrono>

namespace archie::service {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

// A slow or idle client must not pin a connection forever; probes send one small request.
constexpr auto request_timeout = std::chrono::seconds(10);
// Probes and scrapes need a handful of connections; more are closed at once, so that whoever
// reaches the port cannot take the process's file descriptors or memory.
constexpr std::size_t max_connections = 64;
// After a failed accept (EMFILE, ENFILE, ENOBUFS...) the listening socket stays readable:
// retrying at once would spin the I/O thread and flood the log.
constexpr auto accept_pause_min = std::chrono::milliseconds(50);
constexpr auto accept_pause_max = std::chrono::seconds(1);

prometheus::Family<prometheus::Counter>& request_counter() {
  static auto& family = prometheus::BuildCounter()
                            .Name("archie_admin_http_requests_total")
                            .Help("Requests answered by the admin HTTP server, by path and status code")
                            .Register(metrics::registry());
  return family;
}

using status_source = std::function<std::optional<status_documents>()>;

bool is_status_path(std::string_view target) { return target == "/status" || target == "/status.json"; }

bhttp::response<bhttp::string_body> respond(const bhttp::request<bhttp::string_body>& req,
                                            health::readiness& ready, const status_source& status) {
  bhttp::response<bhttp::string_body> res;
  res.version(req.version());
  res.keep_alive(req.keep_alive());
  res.set(bhttp::field::server, "archie");
  std::string_view target = req.target();
  if (auto q = target.find('?'); q != std::string_view::npos) target = target.substr(0, q);

  if (req.method() != bhttp::verb::get && req.method() != bhttp::verb::head) {
    res.result(bhttp::status::method_not_allowed);
    res.set(bhttp::field::allow, "GET, HEAD");
    res.set(bhttp::field::content_type, "text/plain; charset=utf-8");
    res.body() = "method not allowed\n";
  } else if (target == "/live") {
    res.result(bhttp::status::ok);
    res.set(bhttp::field::content_type, "text/plain; charset=utf-8");
    res.body() = "ok\n";
  } else if (target == "/ready") {
    // Whoever reaches the port sees a state per check, never error texts, bucket names or
    // endpoints: those go to the log (readiness::evaluate logs every change with its detail).
    auto report = ready.evaluate();
    boost::json::object body;
    body["ready"] = report.ready;
    boost::json::object checks;
    for (const auto& [name, r] : report.checks) checks[name] = r.ok ? "ok" : "failing";
    body["checks"] = std::move(checks);
    res.result(report.ready ? bhttp::status::ok : bhttp::status::service_unavailable);
    res.set(bhttp::field::content_type, "application/json");
    res.body() = boost::json::serialize(body) + "\n";
  } else if (target == "/metrics") {
    res.result(bhttp::status::ok);
    res.set(bhttp::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
    res.body() = metrics::serialize_text();
  } else if (is_status_path(target) && status) {
    // Numbers, codes and names from the config only: never error texts (see fleet/worker_entry.hpp).
    auto docs = status();
    const bool html = target == "/status";
    res.result(docs ? bhttp::status::ok : bhttp::status::service_unavailable);
    res.set(bhttp::field::content_type, html ? "text/html; charset=utf-8" : "application/json");
    res.set(bhttp::field::cache_control, "no-store");
    if (html) res.body() = docs ? docs->html : fleet::render_status_placeholder();
    else res.body() = docs ? docs->json : std::string("{\"state\":\"unknown\",\"problems\":[\"not read yet\"]}\n");
  } else {
    res.result(bhttp::status::not_found);
    res.set(bhttp::field::content_type, "text/plain; charset=utf-8");
    res.body() = "not found: try /live, /ready, /metrics or /status\n";
  }
  if (req.method() == bhttp::verb::head) {
    res.content_length(res.body().size());
    // HEAD advertises the GET length with no body; prepare_payload would reset it to 0.
    res.body().clear();
  } else {
    res.prepare_payload();
  }
  const bool known = target == "/live" || target == "/ready" || target == "/metrics" || is_status_path(target);
  request_counter().Add({{"path", known ? std::string(target) : "other"},
                         {"code", std::to_string(res.result_int())}}).Increment();
  return res;
}

// Connections open, process-wide (one admin server per process; only its I/O thread touches
// it). Static, not a member: a connection's frame may be destroyed by ~io_context after the
// server object is gone, and its decrement must land somewhere that still exists.
std::size_t& open_connections() {
  static std::size_t n = 0;
  return n;
}

asio::awaitable<void> serve_connection(beast::tcp_stream stream, health::readiness& ready, const status_source& status) {
  struct counted {
    ~counted() { --open_connections(); }
  } slot;
  beast::flat_buffer buffer;
  try {
    for (;;) {
      stream.expires_after(request_timeout);
      bhttp::request_parser<bhttp::string_body> parser;
      parser.body_limit(64 * 1024);  // probes and scrapes send no body
      co_await bhttp::async_read(stream, buffer, parser, asio::use_awaitable);
      auto req = parser.release();
      auto res = respond(req, ready, status);
      bool keep = res.keep_alive();
      co_await bhttp::async_write(stream, res, asio::use_awaitable);
      if (!keep) break;
    }
  } catch (const boost::system::system_error& e) {
    if (e.code() != bhttp::error::end_of_stream && e.code() != beast::error::timeout &&
        e.code() != asio::error::operation_aborted && e.code() != asio::error::connection_reset)
      log::debug("admin connection ended", {{"error", e.code().message()}});
  }
  boost::system::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

}  // namespace

struct admin_server::impl {
  tcp::acceptor acceptor;
  health::readiness& ready;
  status_source status;  ///< empty: no /status
  impl(asio::any_io_executor ex, health::readiness& r) : acceptor(ex), ready(r) {}
};

admin_server::admin_server(asio::any_io_executor executor, const config::http_config& cfg, health::readiness& ready)
    : impl_(std::make_unique<impl>(executor, ready)) {
  tcp::endpoint ep(asio::ip::make_address(cfg.address), cfg.port);
  auto& a = impl_->acceptor;
  a.open(ep.protocol());
  a.set_option(asio::socket_base::reuse_address(true));
  a.bind(ep);
  a.listen();
}

admin_server::~admin_server() = default;

std::uint16_t admin_server::port() const { return impl_->acceptor.local_endpoint().port(); }

asio::awaitable<void> admin_server::serve() {
  auto& a = impl_->acceptor;
  asio::steady_timer pause(a.get_executor());
  auto pause_for = accept_pause_min;
  std::uint64_t failures = 0;
  while (a.is_open()) {
    boost::system::error_code ec;
    tcp::socket socket = co_await a.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (ec == asio::error::operation_aborted || !a.is_open()) break;
    if (ec) {
      // One line per streak (then every 100th), and a growing pause between attempts.
      if (failures++ % 100 == 0)
        log::warn("admin server accept failed; pausing",
                  {{"error", ec.message()}, {"failures", static_cast<std::int64_t>(failures)},
                   {"pause_ms", static_cast<std::int64_t>(pause_for.count())}});
      pause.expires_after(pause_for);
      co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      pause_for = std::min<std::chrono::milliseconds>(pause_for * 2, accept_pause_max);
      continue;
    }
    failures = 0;
    pause_for = accept_pause_min;
    if (open_connections() >= max_connections) {
      boost::system::error_code ignored;
      socket.close(ignored);
      request_counter().Add({{"path", "refused"}, {"code", "0"}}).Increment();
      continue;
    }
    ++open_connections();
    asio::co_spawn(a.get_executor(), serve_connection(beast::tcp_stream(std::move(socket)), impl_->ready, impl_->status),
                   asio::detached);
  }
}

void admin_server::set_status_source(status_source source) { impl_->status = std::move(source); }

void admin_server::stop() {
  boost::system::error_code ignored;
  impl_->acceptor.close(ignored);
}

}  // namespace archie::service
