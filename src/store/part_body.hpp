#pragma once
// The bytes of one upload request and their digests. A digest is computed the first time a
// destination asks for it and then kept, so a part fanned out to three S3 stores is hashed
// once, not three times. Not thread-safe: uploads run on one io_context thread.
#include "http/cut_group.hpp"

#include <cstddef>
#include <optional>
#include <span>
#include <string>

namespace archie::store {

class part_body {
 public:
  explicit part_body(std::span<const std::byte> bytes, http::cut_group* cut = nullptr) : bytes_(bytes), cut_(cut) {}
  std::span<const std::byte> bytes() const { return bytes_; }
  /// The copy's requests, cut together when the copy is cancelled; null: none.
  http::cut_group* cut() const { return cut_; }
  std::size_t size() const { return bytes_.size(); }
  /// Lower-case hex SHA-256: a signed S3 payload (x-amz-content-sha256).
  const std::string& sha256_hex() const;
  /// Base64 MD5: the Content-MD5 header.
  const std::string& content_md5() const;

 private:
  std::span<const std::byte> bytes_;
  http::cut_group* cut_ = nullptr;
  mutable std::optional<std::string> sha256_hex_;
  mutable std::optional<std::string> content_md5_;
};

}  // namespace archie::store
