#include "engine/transfer_slots.hpp"

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
