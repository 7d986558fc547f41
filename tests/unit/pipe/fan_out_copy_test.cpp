// fan_out_copy's decisions with a fake source and fake destinations on an io_context: no
// servers, exact faults (a source that fails at one offset, a destination that refuses one
// part), and the buffer accounting checked after each copy.
#include "pipe/fan_out_copy.hpp"
#include "store/checksum.hpp"
#include "support/fake_stores.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <doctest/doctest.h>

#include <cstring>
#include <optional>

namespace asio = boost::asio;
using namespace archie;
using store::async_result;
using store::done;
using store::error_kind;
using store::object_info;
using store::store_error;

namespace {

using testing::fake_destination;
using testing::fake_source;
using testing::pattern;

constexpr std::size_t part = 1024;

pipe::copy_request request_for(fake_source& src, const std::vector<fake_destination*>& dests,
                                std::size_t parts_in_flight) {
  pipe::copy_request req;
  req.source = &src;
  req.bucket = "b";
  req.key = "k";
  req.meta.size = src.data.size();
  req.meta.etag = src.etag;
  req.parts_in_flight = parts_in_flight;
  for (auto* d : dests) req.targets.push_back({d, "db", "dk"});
  return req;
}

pipe::copy_report copy(asio::io_context& io, pipe::part_buffer_pool& pool, fake_source& src,
                       std::vector<fake_destination*> dests, std::size_t parts_in_flight = 3) {
  pipe::copy_request req = request_for(src, dests, parts_in_flight);
  std::optional<pipe::copy_report> out;
  std::exception_ptr failure;
  asio::co_spawn(io, pipe::fan_out_copy(io.get_executor(), pool, req),
                 [&](std::exception_ptr e, pipe::copy_report r) {
                   failure = e;
                   out = std::move(r);
                 });
  io.run();
  io.restart();
  if (failure) std::rethrow_exception(failure);
  return std::move(*out);
}

// Every destination finished with exactly the source's bytes in `parts` parts, the source
// was read once and holds no answer open, and every buffer is back.
void check_whole_copies(const fake_source& src, const std::vector<fake_destination*>& dests, std::size_t parts,
                        const pipe::part_buffer_pool& pool) {
  CHECK(src.bytes_read == src.data.size());  // no byte read twice, none skipped
  CHECK(src.open_answers == 0);              // given back when the copy ended
  for (auto* d : dests) {
    CHECK(d->written == src.data);
    CHECK(d->finished);
    CHECK(d->parts.size() == parts);
  }
  CHECK(pool.in_use() == 0);
}

}  // namespace

TEST_CASE("the source is read once and every part reaches every destination; all buffers come back") {
  asio::io_context io;
  pipe::part_buffer_pool pool(io.get_executor(), part, 4 * part);
  fake_source src;
  src.data = pattern(3 * part + 100);
  fake_destination a("a"), b("b");
  auto report = copy(io, pool, src, {&a, &b});
  CHECK(report.ok());
  CHECK(src.bytes_read == src.data.size());  // once, not once per destination
  for (auto* d : {&a, &b}) {
    CHECK(d->written == src.data);
    CHECK(d->finished);
    CHECK_FALSE(d->aborted);
    CHECK(d->parts.size() == 4);
  }
  CHECK(pool.in_use() == 0);
}

TEST_CASE("a source failure aborts every upload and tells in-order destinations to stop waiting") {
  asio::io_context io;
  pipe::part_buffer_pool pool(io.get_executor(), part, 2 * part);
  fake_source src;
  src.data = pattern(6 * part);
  src.fail_at_offset = 2 * part;
  fake_destination a("a"), b("b");
  auto report = copy(io, pool, src, {&a, &b});
  REQUIRE(report.source_error);
  CHECK(report.source_error->kind == error_kind::retryable);
  for (auto* d : {&a, &b}) {
    CHECK(d->aborted);
    CHECK_FALSE(d->finished);
    CHECK(d->stopped_waiting);
  }
  CHECK(pool.in_use() == 0);
}

TEST_CASE("one destination refusing a part is aborted alone; the others complete") {
  asio::io_context io;
  pipe::part_buffer_pool pool(io.get_executor(), part, 3 * part);
  fake_source src;
  src.data = pattern(4 * part);
  fake_destination good("good"), bad("bad");
  bad.refuse_part = 2;
  auto report = copy(io, pool, src, {&good, &bad});
  CHECK_FALSE(report.source_error);
  REQUIRE(report.target_errors.size() == 2);
  CHECK_FALSE(report.target_errors[0]);
  REQUIRE(report.target_errors[1]);
  CHECK(report.target_errors[1]->kind == error_kind::permanent);
  CHECK(good.finished);
  CHECK(good.written == src.data);
  CHECK(bad.aborted);
  CHECK_FALSE(bad.finished);
  CHECK(pool.in_use() == 0);
}

TEST_CASE("an empty object is one empty part, finished at every destination") {
  asio::io_context io;
  pipe::part_buffer_pool pool(io.get_executor(), part, part);
  fake_source src;
  fake_destination a("a");
  auto report = copy(io, pool, src, {&a});
  CHECK(report.ok());
  CHECK(a.finished);
  CHECK(a.written.empty());
}

TEST_CASE("a cancelled waiter stops the copy, waits for it, and every upload is aborted") {
  asio::io_context io;
  pipe::part_buffer_pool pool(io.get_executor(), part, 2 * part);
  fake_source src;
  src.data = pattern(40 * part);
  fake_destination slow("slow");
  slow.per_part = std::chrono::milliseconds(10);
  pipe::copy_request req = request_for(src, {&slow}, 2);
  asio::cancellation_signal cancel;
  std::exception_ptr thrown;
  bool returned = false;
  asio::co_spawn(io, pipe::fan_out_copy(io.get_executor(), pool, req),
                 asio::bind_cancellation_slot(cancel.slot(), [&](std::exception_ptr e, pipe::copy_report) {
                   thrown = e;
                   returned = true;
                 }));
  asio::steady_timer later(io, std::chrono::milliseconds(35));
  later.async_wait([&](boost::system::error_code) { cancel.emit(asio::cancellation_type::terminal); });
  io.run();
  REQUIRE(returned);
  // The cancellation goes on up, so the caller starts no further round.
  REQUIRE(thrown);
  CHECK_THROWS_AS(std::rethrow_exception(thrown), boost::system::system_error);
  CHECK(slow.aborted);
  CHECK_FALSE(slow.finished);
  CHECK(slow.parts.size() < 40);  // stopped early, not run to the end
  CHECK(pool.in_use() == 0);      // the job was over before the waiter returned
}

TEST_CASE("a cancelled copy cuts its part uploads in flight instead of waiting for their timeout") {
  asio::io_context io;
  pipe::part_buffer_pool pool(io.get_executor(), part, 4 * part);
  fake_source src;
  src.data = pattern(8 * part);
  fake_destination silent("silent");
  silent.hang = true;  // every part upload waits for an answer that never comes
  pipe::copy_request req = request_for(src, {&silent}, 4);
  asio::cancellation_signal cancel;
  bool returned = false;
  asio::co_spawn(io, pipe::fan_out_copy(io.get_executor(), pool, req),
                 asio::bind_cancellation_slot(cancel.slot(), [&](std::exception_ptr, pipe::copy_report) {
                   returned = true;
                 }));
  asio::steady_timer later(io, std::chrono::milliseconds(20));
  later.async_wait([&](boost::system::error_code) { cancel.emit(asio::cancellation_type::terminal); });
  auto started = std::chrono::steady_clock::now();
  io.run_for(std::chrono::seconds(30));
  CHECK(returned);
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(20));  // not the hour
  CHECK(silent.aborted);  // aborted after its parts were cut, not left open
  CHECK_FALSE(silent.finished);
  CHECK(pool.in_use() == 0);
}

TEST_CASE("a first part read by the caller is sent as it is, and the source is not read again") {
  asio::io_context io;
  pipe::part_buffer_pool pool(io.get_executor(), part, part);
  fake_source src;
  src.data = pattern(part - 100);
  fake_destination a("a"), b("b");
  pipe::copy_request req = request_for(src, {&a, &b}, 3);
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    req.ahead.first_part = co_await pool.acquire(part);  // room to spare, as for an object that may have grown
    std::memcpy(req.ahead.first_part->data(), src.data.data(), src.data.size());
  }, asio::detached);
  io.run();
  io.restart();
  std::optional<pipe::copy_report> out;
  asio::co_spawn(io, pipe::fan_out_copy(io.get_executor(), pool, req),
                 [&](std::exception_ptr, pipe::copy_report r) { out = std::move(r); });
  io.run();
  req.ahead.first_part.reset();  // the caller's handle; the pipe has dropped its own
  REQUIRE(out);
  CHECK(out->ok());
  CHECK(src.bytes_read == 0);
  CHECK(a.written == src.data);
  CHECK(b.written == src.data);
  CHECK(pool.in_use() == 0);
  CHECK(pool.bytes_in_use() == 0);
}

TEST_CASE("with a buffer and a free worker for every part, one GET brings the whole object") {
  asio::io_context io;
  pipe::part_buffer_pool pool(io.get_executor(), part, 8 * part);
  fake_source src;
  src.keeps_answers_open = true;
  src.data = pattern(4 * part + 100);
  fake_destination a("a"), b("b");
  auto report = copy(io, pool, src, {&a, &b}, 8);
  CHECK(report.ok());
  CHECK(src.reads == 1);
  check_whole_copies(src, {&a, &b}, 5, pool);
}

TEST_CASE("a GET asks for no more parts than there are buffers to read them into at once") {
  asio::io_context io;
  // Two buffers for seven parts: an answer carrying more would wait on its reader while
  // the server holds it.
  pipe::part_buffer_pool pool(io.get_executor(), part, 2 * part);
  fake_source src;
  src.keeps_answers_open = true;
  src.data = pattern(6 * part + 100);
  fake_destination a("a"), b("b");
  auto report = copy(io, pool, src, {&a, &b}, 3);
  CHECK(report.ok());
  CHECK(src.reads >= 4);
  CHECK(src.reads < 7);  // some answers did carry two parts
  for (auto length : src.answer_lengths) CHECK(length <= 2 * part);
  check_whole_copies(src, {&a, &b}, 7, pool);
}

TEST_CASE("an answer that breaks mid-object is continued from where it stopped with a new GET") {
  asio::io_context io;
  pipe::part_buffer_pool pool(io.get_executor(), part, 8 * part);
  fake_source src;
  src.keeps_answers_open = true;
  src.data = pattern(5 * part + 7);
  src.answer_breaks_at = 3 * part;
  fake_destination a("a");
  auto report = copy(io, pool, src, {&a}, 8);
  CHECK(report.ok());
  CHECK(src.reads == 2);
  check_whole_copies(src, {&a}, 6, pool);
}

TEST_CASE("a source that keeps no answer open is read part by part, several in flight") {
  asio::io_context io;
  pipe::part_buffer_pool pool(io.get_executor(), part, 4 * part);
  fake_source src;  // keeps_answers_open = false: a source with all its open reads taken
  src.data = pattern(4 * part);
  fake_destination a("a");
  auto report = copy(io, pool, src, {&a});
  CHECK(report.ok());
  CHECK(src.reads == 4);
  CHECK(a.written == src.data);
}

TEST_CASE("the first part and the rest of its answer, given by the caller, make the whole copy") {
  asio::io_context io;
  pipe::part_buffer_pool pool(io.get_executor(), part, 2 * part);
  fake_source src;
  src.keeps_answers_open = true;
  src.data = pattern(4 * part + 1);
  fake_destination a("a");
  pipe::copy_request req = request_for(src, {&a}, 3);
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    req.ahead.first_part = co_await pool.acquire(part);
    store::range_read first;
    first.rest = &req.ahead.rest;
    auto got = co_await src.read("b", "k", std::span<std::byte>(req.ahead.first_part->data(), part), first);
    CHECK(got.has_value());
  }, asio::detached);
  io.run();
  io.restart();
  REQUIRE(req.ahead.rest);
  CHECK(req.ahead.rest->position() == part);
  std::optional<pipe::copy_report> out;
  asio::co_spawn(io, pipe::fan_out_copy(io.get_executor(), pool, req),
                 [&](std::exception_ptr, pipe::copy_report r) { out = std::move(r); });
  io.run();
  req.ahead.first_part.reset();
  REQUIRE(out);
  CHECK(out->ok());
  CHECK_FALSE(req.ahead.rest);  // taken by the pipe
  CHECK(src.reads == 1);
  check_whole_copies(src, {&a}, 5, pool);
}

namespace {

// A copy of `src` whose request carries the source's checksum, as a HEAD would report it.
pipe::copy_report copy_with_checksum(asio::io_context& io, pipe::part_buffer_pool& pool, fake_source& src,
                                     fake_destination& dest, std::string algorithm, std::string value) {
  pipe::copy_request req = request_for(src, {&dest}, 3);
  req.meta.checksum_algorithm = std::move(algorithm);
  req.meta.checksum = std::move(value);
  std::optional<pipe::copy_report> out;
  asio::co_spawn(io, pipe::fan_out_copy(io.get_executor(), pool, req),
                 [&](std::exception_ptr, pipe::copy_report r) { out = std::move(r); });
  io.run();
  io.restart();
  return std::move(*out);
}

}  // namespace

TEST_CASE("bytes that match the source's own checksum are written, one part or many, for every kind") {
  for (std::size_t size : {std::size_t(0), part - 1, 5 * part + 7}) {
    asio::io_context io;
    pipe::part_buffer_pool pool(io.get_executor(), part, 4 * part);
    fake_source src;
    src.data = pattern(size);
    const std::pair<std::string, std::string> sums[] = {
        {"crc32c", store::crc32c_base64(store::crc32c(src.data))},
        {"crc32", store::crc_base64(store::crc32(src.data), 4)},
        {"crc64nvme", store::crc_base64(store::crc64nvme(src.data), 8)},
    };
    for (const auto& [algorithm, value] : sums) {
      CAPTURE(size);
      CAPTURE(algorithm);
      fake_destination d("d");
      auto report = copy_with_checksum(io, pool, src, d, algorithm, value);
      CHECK(report.ok());
      CHECK(d.finished);
      CHECK(d.written == src.data);
      CHECK(pool.in_use() == 0);
    }
  }
}

TEST_CASE("bytes that differ from the source's checksum are never made visible, and the copy is retried") {
  for (std::size_t size : {part - 1, 5 * part + 7}) {  // checked before the one part goes, or before finish
    asio::io_context io;
    pipe::part_buffer_pool pool(io.get_executor(), part, 4 * part);
    fake_source src;
    src.data = pattern(size);
    auto other = src.data;
    other.back() ^= std::byte{1};  // the source's checksum is of other bytes (corruption at rest or in flight)
    fake_destination d("d");
    auto report = copy_with_checksum(io, pool, src, d, "crc32c", store::crc32c_base64(store::crc32c(other)));
    CAPTURE(size);
    REQUIRE(report.source_error);
    CHECK(report.source_error->code == "SourceChecksumMismatch");
    CHECK(report.source_error->kind == error_kind::retryable);
    CHECK_FALSE(d.finished);
    CHECK(pool.in_use() == 0);
  }
}

TEST_CASE("a SHA-256 is checked on an object read in one part; composite checksums are left to the server") {
  asio::io_context io;
  pipe::part_buffer_pool pool(io.get_executor(), part, 4 * part);
  fake_source src;
  src.data = pattern(part / 2);
  fake_destination wrong("w"), composite("c"), large("l");
  auto report = copy_with_checksum(io, pool, src, wrong, "sha256", "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
  REQUIRE(report.source_error);  // that is the SHA-256 of no bytes at all
  CHECK(report.source_error->code == "SourceChecksumMismatch");
  // "-N": a checksum of the parts' checksums, whose boundaries archie's reads do not follow.
  CHECK(copy_with_checksum(io, pool, src, composite, "crc32c", "AAAAAA==-3").ok());
  src.data = pattern(3 * part);  // many parts: a SHA cannot be combined, so it is not checked
  CHECK(copy_with_checksum(io, pool, src, large, "sha256", "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=").ok());
}
