#include "engine/route_walk.hpp"

#include "async/wait_group.hpp"
#include "engine/history_walk.hpp"
#include "store/listing_prefetch.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/this_coro.hpp>

#include <algorithm>
#include <cstring>
#include <deque>
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

// Two buffers for one content comparison at a time, grown to what the objects need (at most
// content_part_size each).
struct content_buffers {
  std::vector<std::byte> source, replica;
};

// Checks that need requests (a replica's marker, or both sides' bytes with --checksum) run
// concurrently, so a walk over multipart replicas is not one HEAD at a time; verdicts are
// still counted and handed on in key order, as a sequential walk would.
constexpr std::size_t max_running_checks = 16;
constexpr std::size_t max_content_checks = 4;  // each holds two content_part_size buffers

// One key, decided or waiting for its checks.
struct key_job {
  key_difference diff;
  bool ours = false;
  std::vector<char> counted;  ///< per destination: one side has the key there
  std::size_t running = 0;  ///< its checks not yet done
  std::optional<store::store_error> error;
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
  // As large as this object's parts need (small objects, small buffers), kept for the next.
  const auto needed = static_cast<std::size_t>(std::min<std::uint64_t>(content_part_size, source.size));
  if (buffers.source.size() < needed) {
    buffers.source.resize(needed);
    buffers.replica.resize(needed);
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

void apply(destination_verdict& verdict, listed_comparison c) {
  verdict.state = c.state;
  verdict.reason = std::move(c.reason);
}

// The replica's marker (a HEAD) decides destination i of `job`.
boost::asio::awaitable<void> check_marker(store::store_catalog& stores, const config::route_endpoint& dst,
                                          key_job& job, std::size_t i) {
  auto& dest = stores.destination_for(dst.store);
  auto info = co_await dest.replica_info(dst.bucket, job.diff.at[i].key);
  if (!info) {
    job.error = info.error();
    co_return;
  }
  if (!info.value()) {
    apply(job.diff.at[i], {key_state::missing, false, {}});
  } else {
    const std::string* marker = info.value()->metadata(store::source_etag_metadata);
    apply(job.diff.at[i], compare_marker(*job.diff.source, marker ? *marker : std::string()));
  }
}

// Both sides' bytes decide destination i of `job`.
boost::asio::awaitable<void> check_content(store::store_catalog& stores, const config::route_endpoint& src,
                                           const config::route_endpoint& dst, key_job& job, std::size_t i,
                                           content_buffers& buffers, std::uint64_t& bytes_read) {
  auto same = co_await compare_content(stores, src, job.diff.source_key, *job.diff.source, dst, job.diff.at[i].key,
                                       buffers, bytes_read);
  if (!same) {
    job.error = same.error();
    co_return;
  }
  apply(job.diff.at[i], std::move(same.value()));
}

// Outside the coroutine: GCC 12 rule 3 (async/gcc12_coroutines.hpp).
store::store_error check_failed(const config::route_endpoint& dst, const std::string& key) {
  return {store::error_kind::retryable, dst.store, "verify", dst.bucket, key, 0, "failed", "a check of the replica failed", ""};
}

void count(destination_tally& tally, key_state state) {
  switch (state) {
    case key_state::equal: ++tally.equal; break;
    case key_state::missing: ++tally.missing; break;
    case key_state::extra: ++tally.extra; break;
    case key_state::different: ++tally.different; break;
    case key_state::excluded: ++tally.excluded; break;
  }
}

// The walk's keys in order, and the checks running for them.
class check_window {
 public:
  explicit check_window(boost::asio::any_io_executor ex) : wake_(ex, boost::asio::steady_timer::time_point::max()) {}

  std::deque<std::unique_ptr<key_job>> jobs;
  std::size_t running = 0, running_content = 0;
  std::vector<std::unique_ptr<content_buffers>> spare_buffers;

  // Called when a check ends (on the walk's executor).
  void check_done(key_job& job) {
    --job.running;
    --running;
    wake_.cancel();
  }

  // Until one more check ends.
  boost::asio::awaitable<void> wait_for_one() {
    wake_.expires_at(boost::asio::steady_timer::time_point::max());
    co_await wake_.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
  }

  // Until the oldest key's checks are done.
  boost::asio::awaitable<void> wait_for_front() {
    while (!jobs.empty() && jobs.front()->running > 0) co_await wait_for_one();
  }

  // Until no check runs (nothing they use may go away before).
  boost::asio::awaitable<void> wait_for_all() {
    while (running > 0) co_await wait_for_one();
  }

 private:
  boost::asio::steady_timer wake_;
};

// Counts the oldest key (its checks done) and hands it on if it differs.
boost::asio::awaitable<std::optional<store::store_error>> settle_front(check_window& window, walk_progress& progress,
                                                                      const difference_handler& on_difference) {
  co_await window.wait_for_front();
  std::unique_ptr<key_job> job = std::move(window.jobs.front());
  window.jobs.pop_front();
  if (job->error) co_return job->error;
  bool differs = false;
  for (std::size_t i = 0; job->ours && i < job->diff.at.size(); ++i) {
    const auto& verdict = job->diff.at[i];
    if (!job->counted[i]) continue;  // neither side has it at this destination
    count(progress.destinations[i], verdict.state);
    differs = differs || (verdict.state != key_state::equal && verdict.state != key_state::excluded);
  }
  ++progress.compared;
  progress.last_key = job->diff.source_key;
  if (differs) {
    ++progress.differences;
    co_await on_difference(job->diff);
  }
  co_return std::nullopt;
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

  check_window window(executor);
  std::optional<store::store_error> failure;
  while (!failure && !stop.load(std::memory_order_relaxed)) {
    for (auto& side : sides)
      if (auto err = co_await side.fill()) {
        failure = err;
        break;
      }
    if (failure) break;
    // The smallest relative key among the sides' heads is decided next.
    std::optional<std::string_view> smallest;
    for (const auto& side : sides)
      if (side.head() && (!smallest || side.rest() < *smallest)) smallest = side.rest();
    if (!smallest) {
      progress.finished = true;
      break;
    }
    std::string rest(*smallest);
    auto job = std::make_unique<key_job>();
    key_difference& diff = job->diff;
    diff.source_key = src.prefix + rest;
    diff.at.assign(dests.size(), {});
    job->counted.assign(dests.size(), 0);
    std::vector<const store::listed_entry*> replica(dests.size(), nullptr);
    if (sides[0].head() && sides[0].rest() == rest) diff.source = *sides[0].head();
    for (std::size_t i = 0; i < dests.size(); ++i) {
      if (sides[i + 1].head() && sides[i + 1].rest() == rest) replica[i] = sides[i + 1].head();
      diff.at[i].key = dests[i].prefix + rest;
    }

    // Another route with a longer source prefix owns this key: neither side is ours.
    job->ours = walk_owns(router, route, diff.source_key);
    for (std::size_t i = 0; job->ours && i < dests.size(); ++i) {
      auto& verdict = diff.at[i];
      if (!diff.source && !replica[i]) continue;  // neither side has it at this destination
      job->counted[i] = 1;
      auto& tally = progress.destinations[i];
      if (diff.source && route.exclude_copy.matches(diff.source_key)) {
        verdict.state = key_state::excluded;
      } else if (diff.source && !replica[i]) {
        verdict.state = key_state::missing;
      } else if (!diff.source && replica[i]) {
        // Kept on purpose: an exclude_remove key, or any key at a destination that keeps deletes.
        verdict.state = removes_at(route, dests[i], diff.source_key) ? key_state::extra : key_state::excluded;
      } else {
        auto c = compare_listed(*diff.source, *replica[i]);
        const bool read_content = options.compare_content && diff.source->size == replica[i]->size;
        if (!read_content && !c.needs_marker) {
          apply(verdict, std::move(c));
          continue;
        }
        // A request decides it: wait for room, oldest keys first (or, when the checks running
        // are all this key's, for one of them).
        while (window.running >= max_running_checks || (read_content && window.running_content >= max_content_checks)) {
          if (window.jobs.empty()) {
            co_await window.wait_for_one();
            continue;
          }
          if (auto err = co_await settle_front(window, progress, on_difference)) {
            failure = err;
            break;
          }
        }
        if (failure) break;
        ++job->running;
        ++window.running;
        key_job& j = *job;
        if (read_content) {
          if (window.spare_buffers.empty()) window.spare_buffers.push_back(std::make_unique<content_buffers>());
          std::shared_ptr<content_buffers> buffers(window.spare_buffers.back().release(),
                                                   [&window](content_buffers* b) { window.spare_buffers.emplace_back(b); });
          window.spare_buffers.pop_back();
          ++window.running_content;
          boost::asio::co_spawn(executor, check_content(stores, src, dests[i], j, i, *buffers, tally.content_bytes),
                                [&window, &j, buffers, &dst = dests[i], i](std::exception_ptr e) mutable {
                                  if (e && !j.error) j.error = check_failed(dst, j.diff.at[i].key);
                                  buffers.reset();  // back to the spares
                                  --window.running_content;
                                  window.check_done(j);
                                });
        } else {
          ++tally.marker_reads;
          boost::asio::co_spawn(executor, check_marker(stores, dests[i], j, i),
                                [&window, &j, &dst = dests[i], i](std::exception_ptr e) {
                                  if (e && !j.error) j.error = check_failed(dst, j.diff.at[i].key);
                                  window.check_done(j);
                                });
        }
      }
    }
    for (auto& side : sides)
      if (side.head() && side.rest() == rest) ++side.pos;
    window.jobs.push_back(std::move(job));
    if (failure) break;
    // Keys whose checks are done go on at once.
    while (!failure && !window.jobs.empty() && window.jobs.front()->running == 0)
      failure = co_await settle_front(window, progress, on_difference);
  }
  // What is started is finished (and, without an error, counted) before the walk returns.
  while (!failure && !window.jobs.empty()) failure = co_await settle_front(window, progress, on_difference);
  co_await window.wait_for_all();
  if (failure) {
    progress.finished = false;
    co_return failure;
  }
  if (progress.finished && options.versions) {
    progress.finished = false;
    if (auto err = co_await walk_histories(stores, router, route, options, progress, on_difference, stop)) co_return err;
    progress.finished = !stop.load(std::memory_order_relaxed);
  }
  co_return std::nullopt;
}

}  // namespace archie::engine
