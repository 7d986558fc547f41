#pragma once
// Stage times in log lines and metrics are milliseconds since a steady-clock point.
#include <chrono>

namespace archie::engine {

inline double ms_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace archie::engine
