#include "store/listing_prefetch.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <doctest/doctest.h>

using namespace archie::store;

namespace {

// Pages from memory, then an error or the end: the prefetcher's hand-over is what is tested.
class scripted_listing final : public object_listing {
 public:
  scripted_listing(std::vector<std::vector<std::string>> pages, bool fail_at_end, int& calls)
      : pages_(std::move(pages)), fail_(fail_at_end), calls_(calls) {}
  async_result<std::vector<listed_entry>> next_page() override {
    ++calls_;
    if (next_ < pages_.size()) {
      std::vector<listed_entry> out;
      for (auto& k : pages_[next_]) out.push_back({k, 1, "e", std::nullopt});
      ++next_;
      co_return out;
    }
    if (fail_) co_return failure();
    co_return std::vector<listed_entry>();
  }

 private:
  static store_error failure() {
    return {error_kind::retryable, "s", "ListObjects", "b", "", 503, "SlowDown", "try later", ""};
  }
  std::vector<std::vector<std::string>> pages_;
  std::size_t next_ = 0;
  bool fail_;
  int& calls_;
};

std::vector<std::string> drain(std::unique_ptr<object_listing> inner, std::string& error) {
  boost::asio::io_context io;
  std::vector<std::string> keys;
  {
    prefetched_listing listing(io.get_executor(), std::move(inner));
    auto walk = [&]() -> boost::asio::awaitable<void> {
      for (;;) {
        auto page = co_await listing.next_page();
        if (!page) {
          error = page.error().code;
          co_return;
        }
        if (page->empty()) co_return;
        for (auto& e : page.value()) keys.push_back(e.key);
      }
    };
    auto done = boost::asio::co_spawn(io, walk(), boost::asio::use_future);
    io.run();
    done.get();
  }
  io.restart();
  io.run();
  return keys;
}

}  // namespace

TEST_CASE("a prefetched listing hands over every page in order, then the end, and asks no further") {
  int calls = 0;
  std::string error;
  auto keys = drain(std::make_unique<scripted_listing>(std::vector<std::vector<std::string>>{{"a", "b"}, {"c"}}, false, calls),
                    error);
  CHECK(keys == std::vector<std::string>{"a", "b", "c"});
  CHECK(error.empty());
  CHECK(calls == 3);  // two pages and the empty one that ends the listing
}

TEST_CASE("a prefetched listing passes a listing error through after the pages before it") {
  int calls = 0;
  std::string error;
  auto keys = drain(std::make_unique<scripted_listing>(std::vector<std::vector<std::string>>{{"a"}}, true, calls), error);
  CHECK(keys == std::vector<std::string>{"a"});
  CHECK(error == "SlowDown");
}

TEST_CASE("a prefetched listing dropped mid-way releases its fetcher, so the io_context can finish") {
  boost::asio::io_context io;
  int calls = 0;
  std::vector<std::vector<std::string>> pages{{"a"}, {"b"}, {"c"}, {"d"}};
  {
    prefetched_listing listing(io.get_executor(), std::make_unique<scripted_listing>(pages, false, calls));
    auto first = [&]() -> boost::asio::awaitable<void> {
      auto page = co_await listing.next_page();
      CHECK(page->size() == 1);
    };
    auto done = boost::asio::co_spawn(io, first(), boost::asio::use_future);
    io.run_for(std::chrono::milliseconds(100));  // the fetcher is now blocked handing over a page
    done.get();
  }
  io.restart();
  auto ran = io.run_for(std::chrono::seconds(5));
  CHECK(io.stopped());  // nothing left waiting
  CHECK(ran >= 1);
  CHECK(calls < 5);
}
