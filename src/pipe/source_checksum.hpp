#pragma once
// The source's own checksum of an object (S3 flexible checksums), checked against the bytes
// the pipe read before any destination makes them visible. Parts are read in parallel and in
// any order, so each part's CRC is computed alone and the CRCs are combined in order at the
// end (store/checksum.hpp). SHA-1 and SHA-256 cannot be combined: they are checked only for
// an object read in one part. A composite checksum (a multipart upload's, "...-N") depends on
// the source's part boundaries, which archie's reads do not follow: it is not checked.
#include "store/object_info.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace archie::pipe {

class source_checksum {
 public:
  /// The check for an object of `meta.size` bytes read in parts of `part_size`; nullopt when
  /// the source gave no checksum archie can check that way.
  static std::optional<source_checksum> for_object(const store::object_info& meta, std::size_t part_size);

  /// Part `index` (from 0) was read: `bytes` are all of it. Each part once; parts may come in
  /// any order, and concurrently (each touches only its own slot).
  void add(std::size_t index, std::span<const std::byte> bytes);
  /// The value of the bytes added, base64 as S3 shows it; call once every part is in.
  std::string computed() const;
  bool matches() const { return computed() == expected_; }
  const std::string& algorithm() const { return algorithm_; }
  const std::string& expected() const { return expected_; }

 private:
  std::string algorithm_;
  std::string expected_;
  std::vector<std::uint64_t> part_crcs_;
  std::vector<std::uint64_t> part_lengths_;
  std::string digest_;  ///< SHA-1 / SHA-256 of a one-part object, base64
};

}  // namespace archie::pipe
