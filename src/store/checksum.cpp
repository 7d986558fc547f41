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

std::string crc32c_base64(std::uint32_t crc) { return crc_base64(crc, 4); }

std::string crc_base64(std::uint64_t crc, int bytes) {
  unsigned char be[8];
  for (int i = 0; i < bytes; ++i) be[i] = static_cast<unsigned char>(crc >> (8 * (bytes - 1 - i)));
  return base64(std::span<const unsigned char>(be, static_cast<std::size_t>(bytes)));
}

namespace {

// Reflected CRCs whose register starts and ends inverted (CRC-32, CRC-32C, CRC-64/NVME):
// slicing-by-8 tables built from the reflected polynomial.
template <class Crc, Crc Poly>
struct reflected_crc {
  Crc t[8][256];
  reflected_crc() {
    for (unsigned i = 0; i < 256; ++i) {
      Crc c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ Poly : c >> 1;
      t[0][i] = c;
    }
    for (unsigned i = 0; i < 256; ++i)
      for (int s = 1; s < 8; ++s) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xFF];
  }

  Crc update(std::span<const std::byte> data, Crc crc) const {
    Crc c = ~crc;
    const auto* p = reinterpret_cast<const unsigned char*>(data.data());
    std::size_t n = data.size();
    for (; n >= 8; p += 8, n -= 8) {
      std::uint64_t word;
      std::memcpy(&word, p, 8);  // little-endian hosts (x86-64, arm64)
      word ^= static_cast<std::uint64_t>(c);  // the register (4 or 8 bytes) is used up in these 8 bytes
      c = t[7][word & 0xFF] ^ t[6][(word >> 8) & 0xFF] ^ t[5][(word >> 16) & 0xFF] ^ t[4][(word >> 24) & 0xFF] ^
          t[3][(word >> 32) & 0xFF] ^ t[2][(word >> 40) & 0xFF] ^ t[1][(word >> 48) & 0xFF] ^ t[0][word >> 56];
    }
    for (; n; ++p, --n) c = (c >> 8) ^ t[0][(c ^ *p) & 0xFF];
    return ~c;
  }
};

using crc32_tables = reflected_crc<std::uint32_t, 0xEDB88320u>;
using crc64nvme_tables = reflected_crc<std::uint64_t, 0x9A6C9329AC4BC9B5ull>;

// Appending n zero bytes to a message is linear over GF(2) in the CRC register: a W x W bit
// matrix (one column per bit, as a word). Squaring it doubles the zeros it appends, so
// length_b zero bytes take log2(length_b) squarings; crc(A || B) is crc(A) moved past
// length_b zeros, xor crc(B) (the inverted start and end cancel out).
template <class Crc>
Crc times(const Crc* matrix, Crc vector) {
  Crc sum = 0;
  for (; vector; vector >>= 1, ++matrix)
    if (vector & 1) sum ^= *matrix;
  return sum;
}

template <class Crc>
Crc combine(Crc crc_a, Crc crc_b, std::uint64_t length_b, Crc poly) {
  constexpr int bits = sizeof(Crc) * 8;
  if (length_b == 0) return crc_a;
  Crc op[bits], square[bits];
  op[0] = poly;  // one zero bit
  for (int n = 1; n < bits; ++n) op[n] = Crc(1) << (n - 1);
  auto square_into = [](Crc* out, const Crc* m) {
    for (int n = 0; n < bits; ++n) out[n] = times(m, m[n]);
  };
  square_into(square, op);  // two zero bits
  square_into(op, square);  // four
  Crc* current = op;
  Crc* next = square;
  do {  // each pass: a whole zero byte count bit, starting at one byte (eight bits)
    square_into(next, current);
    std::swap(current, next);
    if (length_b & 1) crc_a = times(current, crc_a);
    length_b >>= 1;
  } while (length_b);
  return crc_a ^ crc_b;
}

}  // namespace

std::uint32_t crc32(std::span<const std::byte> data, std::uint32_t crc) {
  static const crc32_tables tables;
  return tables.update(data, crc);
}

std::uint64_t crc64nvme(std::span<const std::byte> data, std::uint64_t crc) {
  static const crc64nvme_tables tables;
  return tables.update(data, crc);
}

std::uint32_t crc32c_combine(std::uint32_t a, std::uint32_t b, std::uint64_t length_b) {
  return combine<std::uint32_t>(a, b, length_b, 0x82F63B78u);
}
std::uint32_t crc32_combine(std::uint32_t a, std::uint32_t b, std::uint64_t length_b) {
  return combine<std::uint32_t>(a, b, length_b, 0xEDB88320u);
}
std::uint64_t crc64nvme_combine(std::uint64_t a, std::uint64_t b, std::uint64_t length_b) {
  return combine<std::uint64_t>(a, b, length_b, 0x9A6C9329AC4BC9B5ull);
}

}  // namespace archie::store
