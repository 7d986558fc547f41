#include "engine/transfer_slots.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <doctest/doctest.h>

using namespace archie;
using engine::transfer_slots;

TEST_CASE("a record takes a slot at every destination or at none") {
  async::slot_gate a(1), b(1);
  REQUIRE(b.try_enter());  // b is full
  {
    transfer_slots slots;
    auto full = slots.try_take({{"a", &a}, {"b", &b}});
    REQUIRE(full);
    CHECK(*full == "b");
    CHECK(a.held() == 0);  // a's slot was given back
  }
  b.leave();
  {
    transfer_slots slots;
    CHECK_FALSE(slots.try_take({{"a", &a}, {"b", &b}}));
    CHECK(a.held() == 1);
    CHECK(b.held() == 1);
  }
  CHECK(a.held() == 0);  // released when the record ends
  CHECK(b.held() == 0);
}

TEST_CASE("a record is handed back only while a redelivery cannot exhaust max_deliver") {
  CHECK(engine::may_hand_back(-1, 1000));
  CHECK(engine::may_hand_back(10, 8));
  CHECK_FALSE(engine::may_hand_back(10, 9));
  CHECK_FALSE(engine::may_hand_back(1, 1));
}

TEST_CASE("a handed-back record waits about two seconds, doubling up to sixteen") {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 100; ++i) {
    auto first = engine::hand_back_delay(1, rng).count();
    CHECK(first >= 1500);
    CHECK(first <= 2500);
    auto late = engine::hand_back_delay(50, rng).count();
    CHECK(late >= 12000);
    CHECK(late <= 20000);
  }
}

TEST_CASE("a record waits briefly for a busy store's slot but not for a slow store's") {
  using namespace std::chrono_literals;
  boost::asio::io_context io;
  async::slot_gate busy(1), slow(1);
  REQUIRE(busy.try_enter());
  REQUIRE(slow.try_enter());
  slow.leave(3s);  // its records take 3 s
  REQUIRE(slow.try_enter());
  std::optional<std::optional<std::string>> at_busy, at_slow;
  transfer_slots busy_slots, slow_slots;
  // Named: GCC 12 miscompiles temporaries with destructors in a co_await expression.
  const std::vector<transfer_slots::gate> busy_gates{{"busy", &busy}}, slow_gates{{"slow", &slow}};
  boost::asio::co_spawn(io, [&]() -> boost::asio::awaitable<void> {
    at_busy = co_await busy_slots.take_unless_slow(busy_gates);
  }, boost::asio::detached);
  boost::asio::co_spawn(io, [&]() -> boost::asio::awaitable<void> {
    at_slow = co_await slow_slots.take_unless_slow(slow_gates);
  }, boost::asio::detached);
  io.poll();
  REQUIRE(at_slow);
  CHECK(*at_slow == std::optional<std::string>("slow"));  // handed back at once
  CHECK_FALSE(at_busy);  // still waiting
  busy.leave(50ms);
  io.poll();
  REQUIRE(at_busy);
  CHECK_FALSE(*at_busy);  // it got the slot
  CHECK(busy.held() == 1);
}

TEST_CASE("records step aside at once only where every destination is known to be slow") {
  using namespace std::chrono_literals;
  async::slot_gate quick(4), slow(4);
  REQUIRE(quick.try_enter());
  quick.leave(40ms);
  REQUIRE(slow.try_enter());
  slow.leave(2s);
  CHECK(transfer_slots::all_slower_than({{"slow", &slow}}, 250ms));
  CHECK_FALSE(transfer_slots::all_slower_than({{"quick", &quick}}, 250ms));
  CHECK_FALSE(transfer_slots::all_slower_than({{"quick", &quick}, {"slow", &slow}}, 250ms));
  CHECK_FALSE(transfer_slots::all_slower_than({}, 250ms));
}
