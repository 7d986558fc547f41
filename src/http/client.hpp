#pragma once
// A pooled HTTP/1.1 client for one endpoint (TCP or TLS), used by the S3 and GCS stores.
// Bodies are never copied: requests send from the caller's span, and 2xx response bodies are
// read from the socket straight into the caller's buffer. Beast stays inside client.cpp.
#include "http/cut_group.hpp"
#include "http/endpoint.hpp"
#include "http/send_budget.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace archie::http {

using header_list = std::vector<std::pair<std::string, std::string>>;

struct client_options {
  std::size_t max_connections = 64;
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds io_timeout{60000};  ///< per read/write step: an idle connection, not a slow transfer
  std::chrono::milliseconds idle_keepalive{20000};  ///< pooled connections older than this are not reused
  std::string ca_file;                          ///< empty: system trust store
  bool verify_tls = true;
  /// The pace of requests and body bytes (a fleet budget); null: as fast as the server takes them.
  std::shared_ptr<send_budget> budget;
};

struct request {
  std::string method;  ///< "GET", "PUT", ...
  std::string target;  ///< origin-form, already encoded: "/bucket/key?uploadId=..."
  header_list headers;  ///< Host is added by the client
  std::span<const std::byte> body;  ///< borrowed; must outlive the call
  bool expect_body_in_head = false;
  /// A 2xx body may be shorter than the caller's buffer (a read of "up to" into.size() bytes);
  /// response.body_bytes tells how much came. Longer is still an error.
  bool body_may_end_early = false;
  /// A 2xx body longer than `into` (framed by Content-Length) is not an error: `into` is
  /// filled and the rest stays on the connection, handed over in response::rest. One GET
  /// can then feed several part buffers, each read when there is room for it.
  bool body_may_continue = false;
  /// The group this request ends with (see cut_group.hpp); none: it ends on its own.
  cut_group* cut = nullptr;
};

class body_rest;

struct response {
  int status = 0;
  header_list headers;  ///< names lower-cased
  std::string body;     ///< small bodies (XML, JSON, errors); empty when read into `into`
  std::size_t body_bytes = 0;  ///< bytes placed in the caller's buffer
  std::uint64_t body_length = 0;  ///< the whole body's length: body_bytes plus what `rest` holds
  /// The unread rest of the body (request::body_may_continue); null when it was all read.
  std::shared_ptr<body_rest> rest;
  /// The first header of that (lower-case) name. Inline so the response parsers (store/*/
  /// *_response.cpp) and their fuzz targets need no Beast translation unit.
  std::optional<std::string> header(std::string_view lower_name) const {
    for (const auto& [k, v] : headers)
      if (k == lower_name) return v;
    return std::nullopt;
  }
};

struct transport_error {
  boost::system::error_code ec;
  std::string what;       ///< "connect 127.0.0.1:7480: Connection refused"
  bool request_sent = false;  ///< false: safe to retry even a non-idempotent request
  bool response_started = false;  ///< some of the response was read before the failure
};

/// The answer to one request, or why none arrived.
using send_result = boost::system::result<response, transport_error>;

/// The unread rest of a 2xx body. Its connection stays checked out (it counts against
/// max_connections) until the rest is read to its end, when it goes back to the pool, or
/// until this is destroyed, when it is closed. Lives on the client's I/O thread.
class body_rest {
 public:
  virtual ~body_rest() = default;
  /// Reads exactly into.size() bytes (at most remaining()); an error ends the body for good.
  /// `cut`: the group this read ends with (a cancelled copy), as request::cut.
  virtual boost::asio::awaitable<std::optional<transport_error>> read(std::span<std::byte> into,
                                                                      cut_group* cut) = 0;
  virtual std::uint64_t remaining() const = 0;
};

class client {
 public:
  client(boost::asio::any_io_executor executor, endpoint ep, client_options opts);
  ~client();

  /// Sends one request on a pooled connection. A 2xx body goes into `into` when given (an
  /// error if it does not fit exactly, unless req.body_may_end_early), otherwise into response.body (up to 64 MiB).
  boost::asio::awaitable<send_result> send(const request& req, std::span<std::byte> into = {});
  const endpoint& target() const;
  /// Shutdown past its deadline: requests in flight fail at once (operation_aborted, never
  /// retried) and later ones are not sent. A server that stopped answering cannot hold the
  /// process for the rest of its I/O timeout.
  void abort_all();
  /// Connections opened since start (tests use it to prove reuse).
  std::size_t connections_opened() const;

 private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

}  // namespace archie::http
