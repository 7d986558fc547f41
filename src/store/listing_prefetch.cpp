#include "store/listing_prefetch.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/channel.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <optional>

namespace archie::store {
namespace asio = boost::asio;

using page_result = std::optional<result<std::vector<listed_entry>>>;

struct prefetched_listing::state : std::enable_shared_from_this<state> {
  state(asio::any_io_executor ex, std::unique_ptr<object_listing> l) : executor(ex), inner(std::move(l)), pages(ex, 1) {}
  asio::any_io_executor executor;
  std::unique_ptr<object_listing> inner;
  asio::experimental::channel<void(boost::system::error_code, page_result)> pages;
  bool started = false;
  bool finished = false;
};

namespace {

// Fetches pages until the last (empty) one or an error, handing each over; ends early when
// the consumer is gone (channel closed). The frame keeps the state alive while it runs.
asio::awaitable<void> fetch_pages(prefetched_listing::state* raw) {
  auto keep = raw->shared_from_this();
  for (;;) {
    page_result page = co_await keep->inner->next_page();
    bool last = !page->has_value() || page->value().empty();
    boost::system::error_code no_error;
    auto [ec] = co_await keep->pages.async_send(no_error, std::move(page), asio::as_tuple(asio::use_awaitable));
    if (ec || last) co_return;
  }
}

}  // namespace

prefetched_listing::prefetched_listing(asio::any_io_executor executor, std::unique_ptr<object_listing> inner)
    : state_(std::make_shared<state>(executor, std::move(inner))) {}

// close() alone leaves a fetcher already waiting to hand over a page waiting for ever (and the
// io_context with it): cancel() completes that send with an error.
prefetched_listing::~prefetched_listing() {
  state_->pages.cancel();
  state_->pages.close();
}

async_result<std::vector<listed_entry>> prefetched_listing::next_page() {
  if (state_->finished) co_return std::vector<listed_entry>();
  if (!state_->started) {
    state_->started = true;
    asio::co_spawn(state_->executor, fetch_pages(state_.get()), asio::detached);
  }
  auto [ec, page] = co_await state_->pages.async_receive(asio::as_tuple(asio::use_awaitable));
  if (ec || !page) {
    state_->finished = true;
    co_return store_error{error_kind::retryable, "", "list", "", "", 0, "cancelled", "the listing was stopped", ""};
  }
  if (!page->has_value() || page->value().empty()) state_->finished = true;
  co_return std::move(*page);
}

}  // namespace archie::store
