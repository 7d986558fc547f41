#pragma once
// What a client may send to its endpoint: a pace for requests and for request body bytes
// (fleet/store_budget.hpp implements it from the fleet's budgets). The client asks before
// every request it puts on the wire, a retry on a fresh connection included, and before
// every chunk of a body, so the limits hold for what actually goes out.
#include <boost/asio/awaitable.hpp>

#include <cstddef>

namespace archie::http {

class send_budget {
 public:
  virtual ~send_budget() = default;
  /// Returns when one more request may be sent.
  virtual boost::asio::awaitable<void> before_request() = 0;
  /// Returns when `bytes` more body bytes may be sent.
  virtual boost::asio::awaitable<void> before_body_bytes(std::size_t bytes) = 0;
  /// The body chunk to ask for at a time; 0 while bodies are not limited (sent in one write).
  virtual std::size_t body_chunk() const = 0;
};

}  // namespace archie::http
