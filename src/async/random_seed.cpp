#include "async/random_seed.hpp"

#include <random>

namespace archie::async {

std::uint64_t random_seed() {
  thread_local std::uint64_t state = (static_cast<std::uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}();
  // splitmix64 (Steele, Lea, Flood 2014): a counter through a bijective mixer.
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace archie::async
