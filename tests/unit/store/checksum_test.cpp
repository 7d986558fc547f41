#include "store/checksum.hpp"

#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <random>
#include <vector>

using archie::store::crc32c;
using archie::store::crc32c_table;

namespace {
std::span<const std::byte> bytes_of(const char* s) { return {reinterpret_cast<const std::byte*>(s), std::strlen(s)}; }
}  // namespace

TEST_CASE("CRC32C is the Castagnoli check value on both paths (RFC 3720 B.4)") {
  CHECK(crc32c(bytes_of("123456789")) == 0xE3069283u);
  CHECK(crc32c_table(bytes_of("123456789")) == 0xE3069283u);
  CHECK(crc32c(std::span<const std::byte>{}) == 0u);
  std::vector<std::byte> zeros(32, std::byte{0});
  CHECK(crc32c(zeros) == 0x8A9136AAu);
  MESSAGE("crc32c runs on the CPU's instruction: " << std::string(archie::store::crc32c_hardware() ? "yes" : "no"));
}

TEST_CASE("the CPU's CRC32C equals the table's on random inputs, lengths, alignments and continuations") {
  std::mt19937_64 rng(20261207);
  std::vector<std::byte> buf(70000);
  for (auto& b : buf) b = static_cast<std::byte>(rng());
  for (int round = 0; round < 300; ++round) {
    const std::size_t offset = rng() % 16;  // unaligned starts
    const std::size_t len = round < 64 ? static_cast<std::size_t>(round) : rng() % (buf.size() - 16);
    std::span<const std::byte> data(buf.data() + offset, len);
    const auto seed = static_cast<std::uint32_t>(rng());
    CAPTURE(offset);
    CAPTURE(len);
    REQUIRE(crc32c(data, seed) == crc32c_table(data, seed));
    // Part by part, continuing from the previous value, as GCS uploads compute it.
    const std::size_t cut = len ? rng() % len : 0;
    CHECK(crc32c(data.subspan(cut), crc32c(data.first(cut))) == crc32c_table(data));
  }
}

TEST_CASE("CRC-32 and CRC-64/NVME give their catalogue check values") {
  CHECK(archie::store::crc32(bytes_of("123456789")) == 0xCBF43926u);
  CHECK(archie::store::crc64nvme(bytes_of("123456789")) == 0xAE8B14860A799888ull);
  CHECK(archie::store::crc32(std::span<const std::byte>{}) == 0u);
  // S3's documentation shows base64 of the big-endian value.
  CHECK(archie::store::crc_base64(0xCBF43926u, 4) == "y/Q5Jg==");
}

TEST_CASE("a CRC of parts combined without their bytes equals the CRC of the whole, for each kind") {
  std::mt19937_64 rng(7);
  std::vector<std::byte> buf(300000);
  for (auto& b : buf) b = static_cast<std::byte>(rng());
  using namespace archie::store;
  for (int round = 0; round < 200; ++round) {
    const std::size_t len = rng() % buf.size();
    const std::size_t cut = len ? rng() % (len + 1) : 0;
    std::span<const std::byte> whole(buf.data(), len), a = whole.first(cut), b = whole.subspan(cut);
    CAPTURE(len);
    CAPTURE(cut);
    CHECK(crc32c_combine(crc32c(a), crc32c(b), b.size()) == crc32c(whole));
    CHECK(crc32_combine(crc32(a), crc32(b), b.size()) == crc32(whole));
    CHECK(crc64nvme_combine(crc64nvme(a), crc64nvme(b), b.size()) == crc64nvme(whole));
    // Continuing from a value is the same as hashing the bytes together.
    CHECK(crc32(b, crc32(a)) == crc32(whole));
    CHECK(crc64nvme(b, crc64nvme(a)) == crc64nvme(whole));
  }
}
