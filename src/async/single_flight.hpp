#pragma once
// One refresh at a time: the first coroutine that needs a fresh credential fetches it, the
// others wait for that fetch to land and read its outcome, so a burst of requests after
// expiry costs one call to the token service, not one per request. For coroutines on one
// (single-threaded) executor; used by the GCS token and S3 credential providers.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstdint>

namespace archie::async {

class single_flight {
 public:
  explicit single_flight(boost::asio::any_io_executor ex) : landed_(ex, boost::asio::steady_timer::time_point::max()) {}

  bool in_flight() const { return in_flight_; }

  /// Waits until the fetch in flight ends. True when one ended while waiting (its outcome is
  /// then what the provider stored); false when woken otherwise (cancellation).
  boost::asio::awaitable<bool> wait_for_landing() {
    std::uint64_t before = landings_;
    co_await landed_.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    co_return landings_ != before;
  }

  /// Marks a fetch as in flight until the returned guard goes out of scope, which wakes the
  /// waiters (also when the fetching coroutine is destroyed mid-fetch).
  class flight {
   public:
    explicit flight(single_flight& f) : f_(&f) { f_->in_flight_ = true; }
    ~flight() {
      f_->in_flight_ = false;
      ++f_->landings_;
      f_->landed_.cancel();
    }
    flight(const flight&) = delete;
    flight& operator=(const flight&) = delete;

   private:
    single_flight* f_;
  };

 private:
  bool in_flight_ = false;
  std::uint64_t landings_ = 0;
  boost::asio::steady_timer landed_;
};

}  // namespace archie::async
