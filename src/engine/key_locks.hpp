#pragma once
// Per-key serialisation inside one worker process: two events for the same source key never
// run at once here, so a process never races itself (a slow copy of v1 finishing after a copy
// of v2). Other processes can still race; the replicator's re-check of the source after every
// write settles those. Single-threaded executor only (archie runs one io_context thread).
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <memory>
#include <string>
#include <unordered_map>

namespace archie::engine {

class key_locks {
  struct entry {
    explicit entry(boost::asio::any_io_executor ex) : wakeup(ex, boost::asio::steady_timer::time_point::max()) {}
    boost::asio::steady_timer wakeup;  ///< waiters park on it; unlock wakes one
    bool held = false;
    std::size_t users = 0;  ///< holder + waiters; the entry goes when the last leaves
  };

 public:
  /// Held lock; releases on destruction (also when the holder's coroutine is cancelled).
  class guard {
   public:
    guard() = default;
    guard(key_locks* owner, std::string key, std::shared_ptr<entry> e)
        : owner_(owner), key_(std::move(key)), entry_(std::move(e)) {}
    guard(guard&& o) noexcept : owner_(o.owner_), key_(std::move(o.key_)), entry_(std::move(o.entry_)) {
      o.owner_ = nullptr;
    }
    guard& operator=(guard&&) = delete;
    ~guard() {
      if (owner_ && entry_) {
        entry_->held = false;
        owner_->leave(key_, *entry_);
      }
    }

   private:
    key_locks* owner_ = nullptr;
    std::string key_;
    std::shared_ptr<entry> entry_;
  };

  explicit key_locks(boost::asio::any_io_executor ex) : executor_(ex) {}

  /// Waits until no other holder has `key`, in arrival order as far as the timer queue goes.
  boost::asio::awaitable<guard> lock(const std::string& key) {
    auto& slot = entries_[key];
    if (!slot) slot = std::make_shared<entry>(executor_);
    std::shared_ptr<entry> e = slot;
    ++e->users;
    // A cancelled waiter (timeout, shutdown) must still give up its place.
    struct leave_on_throw {
      key_locks* self;
      const std::string& key;
      entry& e;
      bool armed = true;
      ~leave_on_throw() {
        if (armed) self->leave(key, e);
      }
    } departing{this, key, *e};
    // The timer's expiry stays at max: re-arming it would cancel the other waiters' waits.
    while (e->held) {
      co_await e->wakeup.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    }
    e->held = true;
    departing.armed = false;
    co_return guard(this, key, e);
  }

  std::size_t size() const { return entries_.size(); }

 private:
  void leave(const std::string& key, entry& e) {
    if (--e.users == 0) {
      entries_.erase(key);
      return;
    }
    if (!e.held) e.wakeup.cancel_one();
  }

  boost::asio::any_io_executor executor_;
  std::unordered_map<std::string, std::shared_ptr<entry>> entries_;
};

}  // namespace archie::engine
