#pragma once
// A set of coroutines that belong to one owner: spawned together, awaited together, and never
// detached. The owner stops them gently by its own means (closing their input), waits with a
// deadline, then stops them hard and waits again; an exception that escapes a task is
// logged, not lost, and does not take the process down. For one single-threaded executor.
#include "async/wait_group.hpp"
#include "log/logger.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <exception>
#include <memory>
#include <string>

namespace archie::async {

class task_group {
 public:
  task_group(boost::asio::any_io_executor ex, std::string name) : executor_(ex), name_(std::move(name)), pending_(ex) {}
  task_group(const task_group&) = delete;
  task_group& operator=(const task_group&) = delete;

  /// `keep_alive` is released only after the group has counted the task as finished: pass the
  /// owner's shared_ptr when the group lives inside the object the task keeps alive.
  void spawn(boost::asio::awaitable<void> task, std::shared_ptr<void> keep_alive = {}) {
    pending_.add();
    boost::asio::co_spawn(executor_, std::move(task), [this, keep_alive = std::move(keep_alive)](std::exception_ptr failure) {
      if (failure) {
        try {
          std::rethrow_exception(failure);
        } catch (const std::exception& e) {
          log::error("task failed", {{"group", name_}, {"error", e.what()}});
        } catch (...) {
          log::error("task failed", {{"group", name_}, {"error", "unknown exception"}});
        }
      }
      pending_.done();
    });
  }

  std::size_t running() const { return pending_.pending(); }

  /// Returns when every task has finished.
  boost::asio::awaitable<void> wait() { co_await pending_.wait(); }

  /// Returns true when every task finished before `deadline`, false when time ran out first.
  boost::asio::awaitable<bool> wait_until(std::chrono::steady_clock::time_point deadline) {
    using namespace boost::asio::experimental::awaitable_operators;
    boost::asio::steady_timer timer(executor_, deadline);
    co_await (pending_.wait() || timer.async_wait(boost::asio::use_awaitable));
    co_return pending_.pending() == 0;
  }

 private:
  boost::asio::any_io_executor executor_;
  std::string name_;
  wait_group pending_;
};

}  // namespace archie::async
