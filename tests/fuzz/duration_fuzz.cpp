// Config durations (src/config/duration.cpp): "<non-negative integer><ms|s|m|h>". What parses
// must be in range and survive format_duration -> parse_duration unchanged; any millisecond
// count in range must survive the opposite trip. (archie has no size strings: sizes in the
// config are plain TOML integers such as part_size_mib.)
#include "config/duration.hpp"
#include "tests/fuzz/fuzz_support.hpp"

#include <cstring>

using archie::config::format_duration;
using archie::config::parse_duration;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  constexpr std::int64_t max_ms = std::int64_t{1} << 53;
  const auto text = archie::fuzz::as_text(data, size);
  if (auto d = parse_duration(text)) {
    FUZZ_REQUIRE(d->count() >= 0 && d->count() <= max_ms);
    auto again = parse_duration(format_duration(*d));
    FUZZ_REQUIRE(again && *again == *d);
    FUZZ_REQUIRE(format_duration(*d).size() <= text.size() || text.front() == '0' || text.size() < 3);
  }

  if (size >= sizeof(std::int64_t)) {
    std::int64_t ms = 0;
    std::memcpy(&ms, data, sizeof ms);
    ms &= max_ms * 2 - 1;  // 0 .. 2^54 - 1: both sides of the limit
    auto back = parse_duration(format_duration(std::chrono::milliseconds(ms)));
    FUZZ_REQUIRE(back.has_value() == (ms <= max_ms));
    if (back) FUZZ_REQUIRE(back->count() == ms);
  }
  return 0;
}
