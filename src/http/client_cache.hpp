#pragma once
// One pooled client per endpoint URL, made on first use. Token and credential endpoints are
// few (one per store, or one per assumed role), and reusing their connections matters there
// as much as for storage requests.
#include "http/client.hpp"

#include <boost/asio/any_io_executor.hpp>

#include <map>
#include <memory>
#include <string>

namespace archie::http {

class client_cache {
 public:
  explicit client_cache(boost::asio::any_io_executor executor) : executor_(std::move(executor)) {}

  /// The client for `url`; `ep` and `opts` apply when it is made.
  client& get(const std::string& url, const endpoint& ep, const client_options& opts) {
    auto& c = clients_[url];
    if (!c) c = std::make_unique<client>(executor_, ep, opts);
    return *c;
  }

 private:
  boost::asio::any_io_executor executor_;
  std::map<std::string, std::unique_ptr<client>> clients_;
};

}  // namespace archie::http
