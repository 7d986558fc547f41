#include "pipe/fan_out_copy.hpp"

#include "pipe/pipe_metrics.hpp"
#include "pipe/source_checksum.hpp"
#include "async/slot_gate.hpp"
#include "async/wait_group.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/system/system_error.hpp>

#include <deque>
#include <iterator>
#include <memory>

namespace archie::pipe {
using async::wait_group;
namespace asio = boost::asio;

bool copy_report::ok() const { return first_error() == nullptr; }

const store::store_error* copy_report::first_error() const {
  if (source_error) return &*source_error;
  for (const auto& e : target_errors)
    if (e) return &*e;
  return nullptr;
}

namespace {

// Outside any coroutine: GCC 12 rule 3 (async/gcc12_coroutines.hpp).
store::store_error size_changed(const copy_request& req, std::uint64_t total) {
  return store::store_error{store::error_kind::precondition_failed, req.source->name(), "GetObject", req.bucket,
                            req.key, 0, "SizeChanged",
                            "ranged GET reports " + std::to_string(total) + " bytes in all, HEAD said " +
                                std::to_string(req.meta.size),
                            ""};
}

store::store_error checksum_mismatch(const copy_request& req, const source_checksum& check) {
  return store::store_error{store::error_kind::retryable, req.source->name(), "GetObject", req.bucket, req.key, 0,
                            "SourceChecksumMismatch",
                            "the bytes read do not match the source's x-amz-checksum-" + check.algorithm() + " (" +
                                check.expected() + ", read " + check.computed() + "); nothing was written",
                            ""};
}

store::store_error cancelled_error(const copy_request& req) {
  return store::store_error{store::error_kind::retryable, req.source->name(), "GetObject", req.bucket, req.key,
                            0, "Cancelled", "copy cancelled (message timeout or shutdown); uploads aborted", ""};
}

// Everything the part workers touch lives here, owned by shared_ptr: if the waiting handler
// is cancelled (timeout, shutdown), workers still finish safely and abort what they started.
struct copy_job : std::enable_shared_from_this<copy_job> {
  asio::any_io_executor executor;
  part_buffer_pool& pool;
  copy_request req;
  std::vector<std::unique_ptr<store::upload>> uploads;
  copy_report report;
  std::size_t parts = 0;
  std::size_t next_part = 0;
  wait_group workers;
  std::shared_ptr<wait_group> finished;  ///< signalled when run() is over; shared with the waiter
  http::cut_group requests;  ///< every read and part upload of this copy, cut on cancel
  bool cancelled = false;
  std::optional<source_checksum> checksum;  ///< the source's own checksum, when it gave one
  // Reading in order from one answer: the GET left open and where it is, whether parts are
  // still read so (false once the source kept no answer open: ranged GETs in parallel
  // then), and the turn to read, held while a part is read from it.
  std::shared_ptr<store::body_stream> stream;
  bool streaming = false;
  async::slot_gate read_turn{1};
  std::deque<shared_part> reserved;  ///< buffers for the parts the open answer carries next
  std::size_t width = 0;             ///< part workers
  std::size_t uploading = 0;         ///< workers sending a part (not free to read one)

  // False (and the copy failed as a source error) when the bytes are not the source's.
  bool checksum_holds() {
    if (!checksum) return true;
    auto& m = pipe_metrics::get();
    if (checksum->matches()) {
      m.checksum_matches.Increment();
      return true;
    }
    m.checksum_mismatches.Increment();
    if (!report.source_error) report.source_error = checksum_mismatch(req, *checksum);
    return false;
  }

  // Takes what the caller read ahead (the first part, the open answer and its buffers), so
  // the job holds the only references: each goes back as soon as the job is done with it.
  copy_job(asio::any_io_executor ex, part_buffer_pool& p, copy_request& r)
      : executor(ex),
        pool(p),
        req(r),
        workers(ex),
        finished(std::make_shared<wait_group>(ex)),
        stream(std::move(req.ahead.rest)),
        reserved(std::make_move_iterator(req.ahead.rest_buffers.begin()),
                 std::make_move_iterator(req.ahead.rest_buffers.end())) {
    req.ahead.rest_buffers.clear();
    r.ahead.reset();
    finished->add();
    report.target_errors.resize(req.targets.size());
  }

  bool any_target_alive() const {
    for (std::size_t t = 0; t < uploads.size(); ++t)
      if (uploads[t] && !report.target_errors[t]) return true;
    return false;
  }

  // Raw pointers, not shared_ptr parameters (GCC 12 rule 2, async/gcc12_coroutines.hpp).
  // part_worker keeps the buffer, `body` and `group` alive until group->wait() returns,
  // which is after every write_to has finished.
  asio::awaitable<void> write_to(std::size_t t, std::size_t part, std::uint64_t offset, const store::part_body* body,
                                 wait_group* group) {
    auto self = shared_from_this();
    const std::size_t len = body->size();
    if (uploads[t] && !report.target_errors[t]) {
      auto r = co_await uploads[t]->write_part(static_cast<int>(part + 1), offset, *body);
      if (!r && !report.target_errors[t]) report.target_errors[t] = r.error();
      else if (r)
        pipe_metrics::get().destination_bytes.Add({{"destination", req.targets[t].dest->name()}})
            .Increment(static_cast<double>(len));
    }
    group->done();
  }

  // The waiter was cancelled (message timeout, shutdown): start no more parts, let parts
  // waiting for their turn return, and end the reads and part uploads in flight, so that
  // run() can abort the uploads at once rather than after the store's I/O timeout.
  void cancel() {
    if (cancelled) return;
    cancelled = true;
    for (auto& up : uploads)
      if (up) up->stop_waiting();
    requests.cut();
  }

  bool should_go_on() const { return !cancelled && next_part < parts && !report.source_error && any_target_alive(); }

  // Reads [offset, offset + into.size()): from the open answer when it is there, else with a
  // new GET which, while parts are read in order, may stay open for the next ones.
  asio::awaitable<store::result<store::done>> read_part(std::uint64_t offset, std::span<std::byte> into) {
    if (stream && stream->position() == offset && stream->end() >= offset + into.size()) {
      auto r = co_await stream->read(into, &requests);
      if (r) co_return store::done{};
      stream.reset();
      if (cancelled) co_return r.error();
      // The answer broke (a server that does not wait for a reader that waited for a buffer,
      // a reset): this part, and the rest, from a new GET.
      pipe_metrics::get().reads_resumed.Increment();
    }
    stream.reset();
    store::range_read range{offset, req.meta.etag, req.meta.version_id};
    range.cut = &requests;
    const std::size_t following = streaming ? parts_to_read_with(offset) : 0;
    if (following > 0) {
      range.rest = &stream;
      range.rest_to = std::min<std::uint64_t>(req.meta.size, offset + (following + 1) * pool.part_size());
    }
    auto got = co_await req.source->read(req.bucket, req.key, into, range);
    // The total in Content-Range must be the size we planned the parts for; a server or
    // proxy that disagrees would leave a truncated or padded copy.
    if (got && got->size != req.meta.size) got = size_changed(req, got->size);
    if (!got) co_return got.error();
    // No answer kept open although asked for: the source keeps no more open now.
    if (following > 0 && !stream) streaming = false;
    co_return store::done{};
  }

  // How many parts after the one at `offset` one GET may bring: as many as have a buffer
  // (reserved now, without waiting) and a worker free to read them at once. An answer whose
  // reader waits for a buffer would hold the server's read-ahead for nothing.
  std::size_t parts_to_read_with(std::uint64_t offset) {
    const std::size_t part_size = pool.part_size();
    const std::size_t part = static_cast<std::size_t>(offset / part_size);
    const std::size_t free_readers = width > uploading + 1 ? width - uploading - 1 : 0;
    const std::size_t bound = std::min({free_readers, parts - part - 1, req.source->parts_per_get() - 1});
    while (reserved.size() < bound) {
      auto buf = pool.try_acquire_part(req.meta.size, part + 1 + reserved.size());
      if (!buf) break;
      reserved.push_back(std::move(buf));
    }
    return std::min(bound, reserved.size());
  }

  asio::awaitable<void> part_worker() {
    auto self = shared_from_this();
    const std::size_t part_size = pool.part_size();
    while (should_go_on()) {
      // Parts come from one answer in order: one worker at a time takes the next part and
      // reads it (waiting for its buffer meanwhile); uploads still overlap.
      const bool in_turn = streaming;
      if (in_turn) {
        co_await read_turn.enter();
        if (!should_go_on()) {
          read_turn.leave();
          break;
        }
      }
      std::size_t part = next_part++;
      std::uint64_t offset = static_cast<std::uint64_t>(part) * part_size;
      std::size_t len = static_cast<std::size_t>(std::min<std::uint64_t>(part_size, req.meta.size - offset));
      shared_part buf;
      bool filled = false;
      if (part == 0 && req.ahead.first_part && req.ahead.first_part->capacity() >= len) {
        buf = std::move(req.ahead.first_part);  // read by the caller together with the metadata
        filled = true;
      } else if (!reserved.empty() && reserved.front()->capacity() >= len) {
        buf = std::move(reserved.front());  // taken when the answer carrying this part was asked for
        reserved.pop_front();
      } else {
        reserved.clear();  // not for this object's parts after all (it changed size)
        buf = co_await pool.acquire(len);
      }
      std::optional<store::store_error> failed;
      if (len > 0 && !filled) {
        auto got = co_await read_part(offset, std::span<std::byte>(buf->data(), len));
        if (!got) failed = got.error();
      }
      if (in_turn) read_turn.leave();
      if (failed) {
        if (!report.source_error) report.source_error = std::move(*failed);
        // Later parts will never come: destinations that send in order must stop waiting.
        for (auto& up : uploads)
          if (up) up->stop_waiting();
        break;
      }
      if (checksum) {
        checksum->add(part, std::span<const std::byte>(buf->data(), len));
        // A one-part object is visible once its part is sent: check it before sending.
        if (parts == 1 && !checksum_holds()) break;
      }
      // One buffer, every destination in parallel; the buffer returns when the last is done.
      // The digests travel with it: each is computed once, by the first destination to need it.
      store::part_body body(std::span<const std::byte>(buf->data(), len), &requests);
      auto group = std::make_shared<wait_group>(executor);
      for (std::size_t t = 0; t < uploads.size(); ++t) {
        group->add();
        asio::co_spawn(executor, write_to(t, part, offset, &body, group.get()), asio::detached);
      }
      ++uploading;
      co_await group->wait();
      --uploading;
    }
    workers.done();
  }

  asio::awaitable<void> run() {
    auto self = shared_from_this();
    auto& m = pipe_metrics::get();
    m.transfers_in_flight.Increment();
    const std::size_t part_size = pool.part_size();
    parts = req.meta.size == 0 ? 1 : static_cast<std::size_t>((req.meta.size + part_size - 1) / part_size);
    checksum = source_checksum::for_object(req.meta, part_size);
    uploads.resize(req.targets.size());
    for (std::size_t t = 0; t < req.targets.size(); ++t) {
      const auto& target = req.targets[t];
      store::upload_options options;
      options.cut = &requests;
      options.earlier_attempt_possible = req.earlier_attempt_possible;
      options.write = target.write;
      // Each destination is written what it keeps (its write options say what).
      const store::object_info meta = store::kept_by(req.meta, target.write);
      auto up = co_await target.dest->begin(target.bucket, target.key, meta, req.meta.size, part_size, options);
      if (up) uploads[t] = std::move(up.value());
      else report.target_errors[t] = up.error();
    }
    width = std::min(parts, std::max<std::size_t>(1, req.parts_in_flight));
    streaming = parts > 1 && req.source->parts_per_get() > 1;
    workers.add(width);
    for (std::size_t w = 0; w < width; ++w) asio::co_spawn(executor, part_worker(), asio::detached);
    co_await workers.wait();
    stream.reset();  // the connection goes back (or is closed, if the copy stopped early)
    reserved.clear();

    if (cancelled && !report.source_error) report.source_error = cancelled_error(req);
    // Every part is read: the whole object is checked before any destination finishes it.
    if (parts > 1 && !report.source_error && next_part >= parts) checksum_holds();
    for (std::size_t t = 0; t < uploads.size(); ++t) {
      if (!uploads[t]) continue;
      if (report.source_error || report.target_errors[t] || next_part < parts) {
        co_await uploads[t]->abort();  // never leave a half-written object or a dangling multipart upload
        continue;
      }
      auto fin = co_await uploads[t]->finish();
      if (!fin) {
        report.target_errors[t] = fin.error();
        co_await uploads[t]->abort();
      }
    }
    m.transfers_in_flight.Decrement();
    finished->done();
  }
};

}  // namespace

asio::awaitable<copy_report> fan_out_copy(asio::any_io_executor executor, part_buffer_pool& pool,
                                          copy_request& request) {
  // A waiter that is already cancelled starts nothing: its next co_await would throw and
  // leave a job running that nobody waits for.
  auto state = co_await asio::this_coro::cancellation_state;
  if (state.cancelled() != asio::cancellation_type::none) {
    copy_report r;
    r.source_error = cancelled_error(request);
    r.target_errors.resize(request.targets.size());
    co_return r;
  }
  auto job = std::make_shared<copy_job>(executor, pool, request);
  auto finished = job->finished;
  asio::co_spawn(executor, job->run(), asio::detached);
  // Structured: the copy never outlives this call. When the waiter is cancelled, the job is
  // told to stop and abort its uploads, and we keep waiting until it has, so that the buffer
  // pool, the stores and the concurrency slot all stay held by a live transfer.
  bool cancelled = false;
  while (finished->pending() > 0) {
    co_await finished->wait();
    auto now = co_await asio::this_coro::cancellation_state;
    if (now.cancelled() != asio::cancellation_type::none) {
      cancelled = true;
      job->cancel();
      co_await asio::this_coro::reset_cancellation_state();  // to wait for the aborts
    }
  }
  // The cancellation goes on up: the caller must not start another round (the message
  // timeout is a bound, and shutdown means stop), so it sees what a cancelled wait throws.
  if (cancelled) throw boost::system::system_error(asio::error::operation_aborted, "copy cancelled");
  co_return job->report;
}

}  // namespace archie::pipe
