#pragma once
// A paged listing of one bucket (or a prefix of it) in byte order of the key, as S3's
// ListObjectsV2 returns it: what `archie verify` merges source against destinations with.
// One page is held at a time, so a listing costs the same memory whatever the bucket size.
#include "store/destination.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace archie::store {

struct listed_entry {
  std::string key;
  std::uint64_t size = 0;
  /// Comparable with an S3 ETag: S3's ETag, GCS's MD5 in hex; empty when the store has none.
  std::string etag;
  /// archie's recorded source ETag when the listing carries it at no extra request (local
  /// directories read the extended attribute while walking); nullopt: unknown, ask the
  /// destination (HEAD) when it matters.
  std::optional<std::string> marker;
};

class object_listing {
 public:
  virtual ~object_listing() = default;
  /// The next page, keys in ascending byte order continuing the previous page; an empty
  /// page means the listing is complete.
  virtual async_result<std::vector<listed_entry>> next_page() = 0;
};

/// Keys per listing request: S3's and GCS's maximum page size.
inline constexpr int listing_page_size = 1000;

}  // namespace archie::store
