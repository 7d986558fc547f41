#pragma once
// Requests that end together. A copy that is cancelled (its message timed out, or the worker
// is shutting down) must not leave its part uploads and ranged reads running until their I/O
// timeout: they hold buffers and connections, and the upload cannot be aborted while parts
// are still arriving. Each such request names the group it belongs to (http::request::cut);
// cut() closes the sockets of those in flight (they fail with operation_aborted, which is
// never retried) and refuses the ones sent later.
//
// Not thread-safe: a group, its requests and the client live on one I/O thread.
#include <functional>
#include <list>

namespace archie::http {

class cut_group {
 public:
  using registration = std::list<std::function<void()>>::iterator;

  cut_group() = default;
  cut_group(const cut_group&) = delete;
  cut_group& operator=(const cut_group&) = delete;

  /// Ends the group's requests in flight and refuses later ones.
  void cut() {
    if (cut_) return;
    cut_ = true;
    auto closers = std::move(in_flight_);
    in_flight_.clear();
    for (auto& close : closers) close();
  }
  bool is_cut() const { return cut_; }

  /// For http::client: `close` ends one request in flight; leave() once it is over. A request
  /// that enters a group already cut is ended at once.
  registration enter(std::function<void()> close) {
    if (cut_) {
      close();
      return in_flight_.end();
    }
    return in_flight_.insert(in_flight_.end(), std::move(close));
  }
  void leave(registration r) {
    if (!cut_) in_flight_.erase(r);
  }

 private:
  std::list<std::function<void()>> in_flight_;
  bool cut_ = false;
};

}  // namespace archie::http
