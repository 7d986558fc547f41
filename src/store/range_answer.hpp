#pragma once
// What a ranged GET must prove before its bytes are used. A server (or a proxy in front of
// it) may legally answer `Range: bytes=a-b` with a shorter range, with the whole object (200),
// or with a range that starts elsewhere; a reader that trusted the total in Content-Range
// alone would write bytes it never received. Shared by the S3 and GCS readers.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace archie::store {

/// "bytes FIRST-LAST/TOTAL" (TOTAL may be "*").
struct content_range {
  std::uint64_t first = 0;
  std::uint64_t last = 0;
  std::optional<std::uint64_t> total;
};

/// Parses a Content-Range header value; nullopt when it is not a satisfied byte range.
std::optional<content_range> parse_content_range(std::string_view value);

/// The reading of one answer to `Range: bytes=offset-(offset+asked-1)`.
struct range_answer {
  std::string error;            ///< non-empty: the answer cannot be used (says why)
  std::size_t received = 0;     ///< bytes of the asked range it carries, from `offset`
  std::optional<std::uint64_t> total;  ///< the object's size, when the answer tells it
  /// The server sent less than asked although the object goes on: ask again for the rest.
  bool more = false;
  /// Bytes of the answer past the buffer, left on the connection (a read that goes on).
  std::uint64_t continues = 0;
};

/// Judges a 2xx answer that put `body_bytes` into the caller's buffer. `content_range_header`
/// is the raw header (absent: nullopt). `may_end_early`: the caller reads "up to" `asked`
/// bytes and the object may end sooner. `continues`: bytes of the body past the buffer, not
/// read yet (the buffer is then full); they are [offset + asked, offset + asked + continues).
range_answer judge_range_answer(int status, const std::optional<std::string>& content_range_header,
                                std::uint64_t offset, std::size_t asked, std::size_t body_bytes, bool may_end_early,
                                std::uint64_t continues = 0);

}  // namespace archie::store
