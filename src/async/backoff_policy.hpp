#pragma once
// The shape of an exponential backoff: base * multiplier^(n-1), capped, with jitter. Config
// tables ([queue.nak_backoff]) are read into this type.
#include <chrono>

namespace archie::async {

struct backoff_policy {
  std::chrono::milliseconds base{1000};
  double multiplier = 2.0;
  std::chrono::milliseconds ceiling{600000};
  double jitter = 0.2;  ///< fraction of the delay randomised, spreads retry storms
};

}  // namespace archie::async
