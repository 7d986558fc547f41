#include "pipe/part_buffer_pool.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <doctest/doctest.h>

#include <vector>

using namespace archie;
namespace asio = boost::asio;

namespace {
constexpr std::size_t part = 1024;

// Starts an acquire and keeps what it gets in `into`.
void request(asio::io_context& io, pipe::part_buffer_pool& pool, std::size_t bytes, std::vector<pipe::shared_part>& into,
             asio::cancellation_slot slot = {}) {
  asio::co_spawn(io, [&pool, bytes, &into]() -> asio::awaitable<void> { into.push_back(co_await pool.acquire(bytes)); },
                 asio::bind_cancellation_slot(slot, asio::detached));
}

// Runs what is ready; requests still waiting for budget stay waiting (run() would block on them).
void settle(asio::io_context& io) {
  io.restart();
  while (io.poll() > 0) {
  }
}
}  // namespace

TEST_CASE("small objects take their size from the budget, not a whole part") {
  asio::io_context io;
  pipe::part_buffer_pool pool(io.get_executor(), part, 2 * part);
  std::vector<pipe::shared_part> got;
  for (int i = 0; i < 16; ++i) request(io, pool, 100, got);
  settle(io);
  CHECK(got.size() == 16);  // 16 x 100 bytes fit a 2-part budget
  CHECK(got.front()->capacity() == 100);
  CHECK(pool.bytes_in_use() == 1600);
  got.clear();
  CHECK(pool.bytes_in_use() == 0);
  CHECK(pool.in_use() == 0);
}

TEST_CASE("a request larger than what is left waits, and later small ones queue behind it") {
  asio::io_context io;
  pipe::part_buffer_pool pool(io.get_executor(), part, 2 * part);
  std::vector<pipe::shared_part> held, big, small;
  request(io, pool, part, held);
  request(io, pool, 600, held);
  settle(io);
  REQUIRE(held.size() == 2);
  request(io, pool, part, big);   // 424 bytes left: waits
  request(io, pool, 100, small);  // would fit, but must not overtake the part that waits
  settle(io);
  CHECK(big.empty());
  CHECK(small.empty());
  held.pop_back();  // the 600 come back: the part fits the budget exactly, the small one still waits
  settle(io);
  CHECK(big.size() == 1);
  CHECK(small.empty());
  CHECK(pool.bytes_in_use() == 2 * part);
  held.clear();
  settle(io);
  CHECK(small.size() == 1);
  CHECK(pool.bytes_in_use() == part + 100);
}

TEST_CASE("a cancelled wait gives back nothing it did not take and does not block the queue") {
  asio::io_context io;
  pipe::part_buffer_pool pool(io.get_executor(), part, part);
  std::vector<pipe::shared_part> held, cancelled, next;
  request(io, pool, part, held);
  settle(io);
  asio::cancellation_signal cancel;
  request(io, pool, part, cancelled, cancel.slot());
  request(io, pool, 10, next);
  settle(io);
  cancel.emit(asio::cancellation_type::terminal);
  settle(io);
  CHECK(cancelled.empty());
  CHECK(next.empty());  // the part is still held by the first
  held.clear();
  settle(io);
  CHECK(next.size() == 1);
  CHECK(pool.bytes_in_use() == 10);
}

TEST_CASE("sizes are clamped to a part, and an empty object still gets a (tiny) buffer") {
  asio::io_context io;
  pipe::part_buffer_pool pool(io.get_executor(), part, 4 * part);
  std::vector<pipe::shared_part> got;
  request(io, pool, 10 * part, got);
  request(io, pool, 0, got);
  settle(io);
  REQUIRE(got.size() == 2);
  CHECK(got[0]->capacity() == part);
  CHECK(got[1]->capacity() == 1);
}
