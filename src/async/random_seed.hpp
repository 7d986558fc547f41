#pragma once
// Seeds for jitter. std::random_device costs a system call or, on this kind of VM, a trapped
// CPUID per construction (10% of a worker's CPU when every request built one). One device
// read per thread seeds a splitmix64 sequence; every seed after that is a few instructions.
#include <cstdint>

namespace archie::async {

/// A well-mixed 64-bit seed, different on every call and in every process.
std::uint64_t random_seed();

}  // namespace archie::async
