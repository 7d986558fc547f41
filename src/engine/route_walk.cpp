#include "engine/route_walk.hpp"

#include "async/wait_group.hpp"
#include "engine/history_walk.hpp"
#include "store/listing_prefetch.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/this_coro.hpp>

#include <algorithm>
#include <cstring>
#include <memory>

namespace archie::engine {
namespace {

// One side of the merge: a listing, its current page, and how much of each key is the
// route's prefix (stripped, so every side compares the same relative names).
struct cursor {
  std::unique_ptr<store::object_listing> listing;
  std::size_t strip = 0;
  std::uint64_t* listed = nullptr;
  std::vector<store::listed_entry> page;
  std::size_t pos = 0;
  bool done = false;

  const store::listed_entry* head() const { return pos < page.size() ? &page[pos] : nullptr; }
  std::string_view rest() const { return std::string_view(page[pos].key).substr(strip); }

  boost::asio::awaitable<std::optional<store::store_error>> fill() {
    while (pos == page.size() && !done) {
      auto r = co_await listing->next_page();
      if (!r) co_return r.error();
      page = std::move(r.value());
      pos = 0;
      done = page.empty();
      *listed += page.size();
    }
    co_return std::nullopt;
  }
};

// Two part-sized buffers for the whole walk, allocated on first use.
struct content_buffers {
  std::vector<std::byte> source, replica;
};

// Outside the coroutine: GCC 12 rule 3 (async/gcc12_coroutines.hpp).
store::store_error replica_read_lost(const config::route_endpoint& dst, const std::string& key) {
  return {store::error_kind::retryable, dst.store, "read", dst.bucket, key, 0, "failed", "the replica read ended without an answer", ""};
}

boost::asio::awaitable<void> read_replica_part(store::store_catalog& stores, const config::route_endpoint& dst,
                                               const std::string& key, std::span<std::byte> into,
                                               std::uint64_t offset, std::optional<store::result<store::done>>& out) {
  const std::string any_version;
  out = co_await stores.read(dst.store, dst.bucket, key, into, offset, any_version);
}

// Byte comparison, part by part; the source part and the replica part are read at once.
boost::asio::awaitable<store::result<listed_comparison>> compare_content(
    store::store_catalog& stores, const config::route_endpoint& src, const std::string& src_key,
    const store::listed_entry& source, const config::route_endpoint& dst, const std::string& dst_key,
    content_buffers& buffers, std::uint64_t& bytes_read) {
  if (buffers.source.empty()) {
    buffers.source.resize(content_part_size);
    buffers.replica.resize(content_part_size);
  }
  auto executor = co_await boost::asio::this_coro::executor;
  for (std::uint64_t offset = 0; offset < source.size; offset += content_part_size) {
    auto n = static_cast<std::size_t>(std::min<std::uint64_t>(content_part_size, source.size - offset));
    std::span<std::byte> a(buffers.source.data(), n), b(buffers.replica.data(), n);
    std::optional<store::result<store::done>> replica_read;
    async::wait_group group(executor);
    group.add();
    boost::asio::co_spawn(executor, read_replica_part(stores, dst, dst_key, b, offset, replica_read),
                          [&group](std::exception_ptr) { group.done(); });
    auto source_read = co_await stores.read(src.store, src.bucket, src_key, a, offset, source.etag);
    co_await group.wait();
    if (!source_read) co_return source_read.error();
    if (!replica_read) co_return replica_read_lost(dst, dst_key);
    if (!*replica_read) co_return replica_read->error();
    bytes_read += n;
    if (std::memcmp(a.data(), b.data(), n) != 0)
      co_return listed_comparison{key_state::different, false,
                                  "content differs within bytes " + std::to_string(offset) + "-" +
                                      std::to_string(offset + n - 1)};
  }
  co_return listed_comparison{key_state::equal, false, {}};
}

}  // namespace

std::optional<std::string> walk_listing_prefix(const config::route_endpoint& src, const std::string& prefix) {
  // --prefix names source keys; the route only sees what both prefixes allow.
  if (prefix.compare(0, src.prefix.size(), src.prefix) == 0) return prefix;
  if (src.prefix.compare(0, prefix.size(), prefix) == 0) return src.prefix;
  return std::nullopt;
}

boost::asio::awaitable<std::optional<store::store_error>> walk_route(store::store_catalog& stores,
                                                                     const route::router& router,
                                                                     const route::compiled_route& route,
                                                                     const walk_options& options,
                                                                     walk_progress& progress,
                                                                     const difference_handler& on_difference,
                                                                     const std::atomic<bool>& stop) {
  const auto& src = route.cfg.source;
  const auto& dests = route.cfg.destinations;
  const std::string& prefix = options.prefix;
  content_buffers buffers;
  progress.destinations.assign(dests.size(), {});
  progress.finished = false;
  auto listing_prefix = walk_listing_prefix(src, prefix);
  if (!listing_prefix) {
    progress.finished = true;
    co_return std::nullopt;
  }
  const std::string rest_prefix = listing_prefix->substr(src.prefix.size());

  // Every side fetches its next page while the merge works on the current ones.
  auto executor = co_await boost::asio::this_coro::executor;
  auto listing = [&](const std::string& store, const std::string& bucket, const std::string& list_prefix) {
    return std::make_unique<store::prefetched_listing>(executor, stores.list(store, bucket, list_prefix));
  };
  std::vector<cursor> sides(dests.size() + 1);
  sides[0].listing = listing(src.store, src.bucket, src.prefix + rest_prefix);
  sides[0].strip = src.prefix.size();
  sides[0].listed = &progress.source_listed;
  for (std::size_t i = 0; i < dests.size(); ++i) {
    sides[i + 1].listing = listing(dests[i].store, dests[i].bucket, dests[i].prefix + rest_prefix);
    sides[i + 1].strip = dests[i].prefix.size();
    sides[i + 1].listed = &progress.destinations[i].listed;
  }

  key_difference diff;
  while (!stop.load(std::memory_order_relaxed)) {
    for (auto& side : sides)
      if (auto err = co_await side.fill()) co_return err;
    // The smallest relative key among the sides' heads is decided next.
    std::optional<std::string_view> smallest;
    for (const auto& side : sides)
      if (side.head() && (!smallest || side.rest() < *smallest)) smallest = side.rest();
    if (!smallest) {
      progress.finished = true;
      break;
    }
    std::string rest(*smallest);
    diff.source_key = src.prefix + rest;
    diff.source.reset();
    diff.at.assign(dests.size(), {});
    std::vector<const store::listed_entry*> replica(dests.size(), nullptr);
    if (sides[0].head() && sides[0].rest() == rest) diff.source = *sides[0].head();
    for (std::size_t i = 0; i < dests.size(); ++i) {
      if (sides[i + 1].head() && sides[i + 1].rest() == rest) replica[i] = sides[i + 1].head();
      diff.at[i].key = dests[i].prefix + rest;
    }

    // Another route with a longer source prefix owns this key: neither side is ours.
    bool ours = walk_owns(router, route, diff.source_key);
    bool differs = false;
    for (std::size_t i = 0; ours && i < dests.size(); ++i) {
      auto& verdict = diff.at[i];
      auto& tally = progress.destinations[i];
      if (diff.source && route.exclude_copy.matches(diff.source_key)) {
        verdict.state = key_state::excluded;
      } else if (diff.source && !replica[i]) {
        verdict.state = key_state::missing;
      } else if (!diff.source && replica[i]) {
        // Kept on purpose: an exclude_remove key, or any key at a destination that keeps deletes.
        verdict.state = removes_at(route, dests[i], diff.source_key) ? key_state::extra : key_state::excluded;
      } else if (diff.source && replica[i]) {
        auto c = compare_listed(*diff.source, *replica[i]);
        if (options.compare_content && diff.source->size == replica[i]->size) {
          auto same = co_await compare_content(stores, src, diff.source_key, *diff.source, dests[i], verdict.key,
                                               buffers, tally.content_bytes);
          if (!same) co_return same.error();
          c = same.value();
        } else if (c.needs_marker) {
          ++tally.marker_reads;
          auto& dest = stores.destination_for(dests[i].store);
          auto info = co_await dest.replica_info(dests[i].bucket, verdict.key);
          if (!info) co_return info.error();
          if (!info.value()) {
            c = {key_state::missing, false, {}};
          } else {
            const std::string* marker = info.value()->metadata(store::source_etag_metadata);
            c = compare_marker(*diff.source, marker ? *marker : std::string());
          }
        }
        verdict.state = c.state;
        verdict.reason = std::move(c.reason);
      } else {
        continue;  // neither side has it at this destination
      }
      switch (verdict.state) {
        case key_state::equal: ++tally.equal; break;
        case key_state::missing: ++tally.missing; break;
        case key_state::extra: ++tally.extra; break;
        case key_state::different: ++tally.different; break;
        case key_state::excluded: ++tally.excluded; break;
      }
      differs = differs || (verdict.state != key_state::equal && verdict.state != key_state::excluded);
    }

    for (auto& side : sides)
      if (side.head() && side.rest() == rest) ++side.pos;
    ++progress.compared;
    progress.last_key = diff.source_key;
    if (differs) {
      ++progress.differences;
      co_await on_difference(diff);
    }
  }
  if (progress.finished && options.versions) {
    progress.finished = false;
    if (auto err = co_await walk_histories(stores, router, route, options, progress, on_difference, stop)) co_return err;
    progress.finished = !stop.load(std::memory_order_relaxed);
  }
  co_return std::nullopt;
}

}  // namespace archie::engine
