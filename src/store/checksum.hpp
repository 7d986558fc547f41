#pragma once
// Checksums computed while bodies stream (reads of the buffer, never copies), for servers to
// verify what they received: MD5 (S3 Content-MD5, GCS md5Hash) and CRC32C (GCS, S3 checksums).
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace archie::store {

std::array<unsigned char, 16> md5(std::span<const std::byte> data);
std::string base64(std::span<const unsigned char> data);
/// Base64 of the MD5: the Content-MD5 header value.
std::string content_md5(std::span<const std::byte> data);
/// CRC32C (Castagnoli), continuing from `crc` (0 to start). Uses the CPU's CRC32C
/// instruction (x86-64 SSE4.2, arm64 CRC extension) when it has one, else crc32c_table.
std::uint32_t crc32c(std::span<const std::byte> data, std::uint32_t crc = 0);
/// The same value from slicing-by-8 tables: the fallback, and the reference in tests.
std::uint32_t crc32c_table(std::span<const std::byte> data, std::uint32_t crc = 0);
/// Whether crc32c runs on the CPU's instruction (checked once, at first use).
bool crc32c_hardware();
/// Base64 of the big-endian CRC32C: the x-amz-checksum-crc32c / GCS crc32c value.
std::string crc32c_base64(std::uint32_t crc);

/// CRC-32 (ISO-HDLC, zlib's; S3's x-amz-checksum-crc32), continuing from `crc`.
std::uint32_t crc32(std::span<const std::byte> data, std::uint32_t crc = 0);
/// CRC-64/NVME (S3's x-amz-checksum-crc64nvme), continuing from `crc`.
std::uint64_t crc64nvme(std::span<const std::byte> data, std::uint64_t crc = 0);
/// The CRC of A followed by B from crc(A), crc(B) and B's length, without the bytes: parts
/// read in parallel are checked as one object.
std::uint32_t crc32c_combine(std::uint32_t crc_a, std::uint32_t crc_b, std::uint64_t length_b);
std::uint32_t crc32_combine(std::uint32_t crc_a, std::uint32_t crc_b, std::uint64_t length_b);
std::uint64_t crc64nvme_combine(std::uint64_t crc_a, std::uint64_t crc_b, std::uint64_t length_b);
/// Base64 of the big-endian value, as S3 shows a CRC (4 or 8 bytes).
std::string crc_base64(std::uint64_t crc, int bytes);

}  // namespace archie::store
