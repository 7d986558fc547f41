#include "queue/pull_window.hpp"

#include <doctest/doctest.h>

using archie::queue::pull_window;
using namespace std::chrono_literals;

namespace {

pull_window::limits sixteen_slots() {
  pull_window::limits l;
  l.slots = 16;
  l.max_batch = 256;
  l.refill_at = 4;
  l.heartbeat = 1000ms;
  return l;
}

const pull_window::clock::time_point t0{};

}  // namespace

TEST_CASE("an idle worker asks for all its free slots at once") {
  pull_window w(sixteen_slots());
  CHECK(w.take_request(t0, true) == 16);
  CHECK(w.outstanding() == 16);
  CHECK(w.take_request(t0, true) == 0);  // everything is asked for already
}

TEST_CASE("nothing is requested while paused or disconnected") {
  pull_window w(sixteen_slots());
  CHECK(w.take_request(t0, false) == 0);
  CHECK(w.outstanding() == 0);
}

TEST_CASE("the batch never exceeds max_batch") {
  auto l = sixteen_slots();
  l.max_batch = 5;
  pull_window w(l);
  CHECK(w.take_request(t0, true) == 5);
  CHECK(w.take_request(t0, true) == 5);
  CHECK(w.take_request(t0, true) == 5);
  CHECK(w.take_request(t0, true) == 0);  // one slot left: below refill_at while requests are open
}

TEST_CASE("freed slots are asked for again only in batches of refill_at") {
  pull_window w(sixteen_slots());
  REQUIRE(w.take_request(t0, true) == 16);
  for (int i = 0; i < 16; ++i) REQUIRE(w.message_arrived(t0));
  CHECK(w.outstanding() == 0);
  CHECK(w.free_slots() == 0);
  w.slot_freed();
  // Nothing is open: the first free slot is asked for at once (a lone event must not wait).
  CHECK(w.take_request(t0, true) == 1);
  w.slot_freed();
  w.slot_freed();
  CHECK(w.take_request(t0, true) == 0);  // 2 unrequested with a request open: wait for more
  w.slot_freed();
  w.slot_freed();
  CHECK(w.take_request(t0, true) == 4);
  CHECK(w.outstanding() == 5);
}

TEST_CASE("a message beyond the free slots is refused so the caller hands it back") {
  pull_window w(sixteen_slots());
  REQUIRE(w.take_request(t0, true) == 16);
  for (int i = 0; i < 16; ++i) REQUIRE(w.message_arrived(t0));
  CHECK_FALSE(w.message_arrived(t0));
  CHECK(w.free_slots() == 0);
}

TEST_CASE("an expired request gives back exactly what it did not deliver") {
  pull_window w(sixteen_slots());
  REQUIRE(w.take_request(t0, true) == 16);
  for (int i = 0; i < 6; ++i) REQUIRE(w.message_arrived(t0));
  w.request_ended(t0, 10);  // 408 with Nats-Pending-Messages: 10
  CHECK(w.outstanding() == 0);
  CHECK(w.take_request(t0, true) == 10);  // the 10 free slots are asked for again
}

TEST_CASE("a request ended without a count forgets every request") {
  pull_window w(sixteen_slots());
  REQUIRE(w.take_request(t0, true) == 16);
  w.request_ended(t0, std::nullopt);
  CHECK(w.outstanding() == 0);
}

TEST_CASE("a request that could not be sent is not counted as open") {
  pull_window w(sixteen_slots());
  REQUIRE(w.take_request(t0, true) == 16);
  w.request_not_sent(16);
  CHECK(w.outstanding() == 0);
}

TEST_CASE("requests are forgotten when the server is silent for two heartbeats, not before") {
  pull_window w(sixteen_slots());
  REQUIRE(w.take_request(t0, true) == 16);
  CHECK_FALSE(w.forget_if_silent(t0 + 2500ms));
  w.heartbeat(t0 + 2500ms);
  CHECK_FALSE(w.forget_if_silent(t0 + 5000ms));  // heard 2.5 s ago: within 2 heartbeats + 1 s
  CHECK(w.forget_if_silent(t0 + 5600ms));
  CHECK(w.outstanding() == 0);
  CHECK(w.take_request(t0 + 5600ms, true) == 16);
}

TEST_CASE("silence does not matter while nothing is requested") {
  pull_window w(sixteen_slots());
  CHECK_FALSE(w.forget_if_silent(t0 + 1h));
}
