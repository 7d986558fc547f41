#include "store/checksum.hpp"

#include <openssl/evp.h>

#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#elif defined(__aarch64__)
#include <arm_acle.h>
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

namespace archie::store {

std::array<unsigned char, 16> md5(std::span<const std::byte> data) {
  std::array<unsigned char, 16> out{};
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_md5(), nullptr);
  return out;
}

std::string base64(std::span<const unsigned char> data) {
  std::string out(4 * ((data.size() + 2) / 3), '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data.data(), static_cast<int>(data.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::string content_md5(std::span<const std::byte> data) {
  auto d = md5(data);
  return base64(d);
}

namespace {
// Slicing-by-8 tables for the reflected Castagnoli polynomial 0x82F63B78.
struct crc_tables {
  std::uint32_t t[8][256];
  crc_tables() {
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      t[0][i] = c;
    }
    for (std::uint32_t i = 0; i < 256; ++i)
      for (int s = 1; s < 8; ++s) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xFF];
  }
};
const crc_tables& tables() {
  static const crc_tables instance;
  return instance;
}
}  // namespace

std::uint32_t crc32c_table(std::span<const std::byte> data, std::uint32_t crc) {
  const auto& t = tables().t;
  std::uint32_t c = ~crc;
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  std::size_t n = data.size();
  while (n >= 8) {
    std::uint32_t lo = c ^ (std::uint32_t(p[0]) | std::uint32_t(p[1]) << 8 | std::uint32_t(p[2]) << 16 | std::uint32_t(p[3]) << 24);
    c = t[7][lo & 0xFF] ^ t[6][(lo >> 8) & 0xFF] ^ t[5][(lo >> 16) & 0xFF] ^ t[4][lo >> 24] ^ t[3][p[4]] ^
        t[2][p[5]] ^ t[1][p[6]] ^ t[0][p[7]];
    p += 8;
    n -= 8;
  }
  while (n--) c = (c >> 8) ^ t[0][(c ^ *p++) & 0xFF];
  return ~c;
}

namespace {

using crc_function = std::uint32_t (*)(std::span<const std::byte>, std::uint32_t);

// The instruction computes the same reflected Castagnoli CRC, 8 bytes per step; unaligned
// loads go through memcpy (one mov on both architectures).
#if defined(__x86_64__)
__attribute__((target("sse4.2"))) std::uint32_t crc32c_instruction(std::span<const std::byte> data,
                                                                    std::uint32_t crc) {
  std::uint64_t c = ~crc;
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  std::size_t n = data.size();
  for (; n >= 8; p += 8, n -= 8) {
    std::uint64_t word;
    std::memcpy(&word, p, 8);
    c = _mm_crc32_u64(c, word);
  }
  auto c32 = static_cast<std::uint32_t>(c);
  for (; n; ++p, --n) c32 = _mm_crc32_u8(c32, *p);
  return ~c32;
}
crc_function pick() { return __builtin_cpu_supports("sse4.2") ? crc32c_instruction : crc32c_table; }
#elif defined(__aarch64__)
__attribute__((target("+crc"))) std::uint32_t crc32c_instruction(std::span<const std::byte> data,
                                                                  std::uint32_t crc) {
  std::uint32_t c = ~crc;
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  std::size_t n = data.size();
  for (; n >= 8; p += 8, n -= 8) {
    std::uint64_t word;
    std::memcpy(&word, p, 8);
    c = __crc32cd(c, word);
  }
  for (; n; ++p, --n) c = __crc32cb(c, *p);
  return ~c;
}
crc_function pick() { return (getauxval(AT_HWCAP) & HWCAP_CRC32) ? crc32c_instruction : crc32c_table; }
#else
crc_function pick() { return crc32c_table; }
#endif

crc_function chosen() {
  static const crc_function f = pick();
  return f;
}

}  // namespace

std::uint32_t crc32c(std::span<const std::byte> data, std::uint32_t crc) { return chosen()(data, crc); }

bool crc32c_hardware() { return chosen() != crc32c_table; }

std::string crc32c_base64(std::uint32_t crc) {
  unsigned char be[4] = {static_cast<unsigned char>(crc >> 24), static_cast<unsigned char>(crc >> 16),
                         static_cast<unsigned char>(crc >> 8), static_cast<unsigned char>(crc)};
  return base64(be);
}

}  // namespace archie::store
