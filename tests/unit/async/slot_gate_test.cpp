#include "async/slot_gate.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <doctest/doctest.h>

#include <vector>

namespace asio = boost::asio;
using archie::async::slot_gate;

TEST_CASE("a gate admits up to its limit and no more") {
  slot_gate g(2);
  CHECK(g.try_enter());
  CHECK(g.try_enter());
  CHECK_FALSE(g.try_enter());
  g.leave();
  CHECK(g.try_enter());
  CHECK(g.held() == 2);
}

TEST_CASE("a lower limit takes no slot away; a higher one admits at once") {
  slot_gate g(3);
  for (int i = 0; i < 3; ++i) REQUIRE(g.try_enter());
  g.set_limit(1);
  CHECK(g.held() == 3);
  g.leave();
  g.leave();
  CHECK_FALSE(g.try_enter());  // 1 held, limit 1
  g.set_limit(0);
  g.leave();
  CHECK_FALSE(g.try_enter());  // a share of 0 admits nobody
  g.set_limit(2);
  CHECK(g.try_enter());
}

TEST_CASE("waiters are let in first come, first served, as slots are given back") {
  asio::io_context io;
  slot_gate g(1);
  REQUIRE(g.try_enter());
  std::vector<int> order;
  for (int i = 0; i < 3; ++i)
    asio::co_spawn(io, [&, i]() -> asio::awaitable<void> {
      co_await g.enter();
      order.push_back(i);
    }, asio::detached);
  io.poll();
  CHECK(order.empty());
  CHECK_FALSE(g.try_enter());  // nobody jumps the queue
  g.leave();
  io.poll();
  CHECK(order == std::vector<int>{0});
  g.leave();
  g.leave();
  io.poll();
  CHECK(order == std::vector<int>{0, 1, 2});
  CHECK(g.held() == 1);
}

TEST_CASE("a cancelled waiter leaves the queue holding nothing") {
  asio::io_context io;
  slot_gate g(1);
  REQUIRE(g.try_enter());
  asio::cancellation_signal cancel;
  bool aborted = false;
  asio::co_spawn(io, g.enter(), asio::bind_cancellation_slot(cancel.slot(), [&](std::exception_ptr e) { aborted = e != nullptr; }));
  io.poll();
  cancel.emit(asio::cancellation_type::terminal);
  io.poll();
  CHECK(aborted);
  g.leave();
  CHECK(g.held() == 0);
  CHECK(g.try_enter());
}

TEST_CASE("a waiter with a deadline gets a slot freed in time, or nothing once it passes") {
  asio::io_context io;
  slot_gate g(1);
  REQUIRE(g.try_enter());
  std::vector<bool> results;
  auto wait_until = [&](slot_gate::clock::time_point deadline) {
    asio::co_spawn(io, [&, deadline]() -> asio::awaitable<void> { results.push_back(co_await g.enter_until(deadline)); },
                   asio::detached);
  };
  wait_until(slot_gate::clock::now() + std::chrono::hours(1));
  io.poll();
  g.leave(std::chrono::milliseconds(5));
  io.poll();
  REQUIRE(results == std::vector<bool>{true});
  CHECK(g.held() == 1);

  wait_until(slot_gate::clock::now() + std::chrono::milliseconds(20));
  io.restart();  // it stopped when it ran out of work
  io.run_for(std::chrono::seconds(5));  // nobody leaves: the deadline ends the wait
  REQUIRE(results == std::vector<bool>{true, false});
  CHECK(g.held() == 1);
  g.leave(std::chrono::milliseconds(5));
  CHECK(g.held() == 0);
  CHECK(g.try_enter());  // the timed-out waiter left the queue
}

TEST_CASE("a gate tells how long its slots are held and when its holders stopped leaving") {
  using namespace std::chrono_literals;
  slot_gate g(4);
  CHECK(g.typical_hold() == 0s);
  const auto start = slot_gate::clock::now();
  CHECK_FALSE(g.stalled(start + 1h, 250ms));  // empty: nothing to wait on
  REQUIRE(g.try_enter());
  REQUIRE(g.try_enter());
  CHECK_FALSE(g.stalled(slot_gate::clock::now(), 250ms));
  CHECK(g.stalled(slot_gate::clock::now() + 300ms, 250ms));  // nobody left for 300 ms
  g.leave(2s);
  CHECK(g.typical_hold() == 2s);
  CHECK_FALSE(g.stalled(slot_gate::clock::now(), 250ms));  // a holder just left
  g.leave();  // given back unused: no figure, and no progress
  CHECK(g.typical_hold() == 2s);
  // The average follows the recent holders: eight quick ones bring 2 s well under 1 s.
  for (int i = 0; i < 8; ++i) {
    REQUIRE(g.try_enter());
    g.leave(100ms);
  }
  CHECK(g.typical_hold() < 1s);
  CHECK(g.typical_hold() > 100ms);
}
