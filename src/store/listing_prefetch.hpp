#pragma once
// A listing that asks for its next page while the caller still works on the current one, so
// a walk over several listings waits for the slowest side, not for the sum of them all.
// At most two pages are held beyond the caller's: the one waiting in the hand-over and the
// one being fetched.
#include "store/object_listing.hpp"

#include <boost/asio/any_io_executor.hpp>

#include <memory>

namespace archie::store {

class prefetched_listing final : public object_listing {
 public:
  /// The fetcher runs on `executor`; run it until the fetch in flight ends before the stores
  /// the inner listing borrows are destroyed.
  prefetched_listing(boost::asio::any_io_executor executor, std::unique_ptr<object_listing> inner);
  ~prefetched_listing() override;
  async_result<std::vector<listed_entry>> next_page() override;

  struct state;

 private:
  std::shared_ptr<state> state_;
};

}  // namespace archie::store
