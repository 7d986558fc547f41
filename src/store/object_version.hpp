#pragma once
// One entry of a key's version history, as a versioned store lists it: an object version or
// a delete marker. Lists are newest first, the order S3's ListObjectVersions gives.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace archie::store {

struct object_version {
  std::string version_id;
  bool delete_marker = false;
  bool latest = false;  ///< the key's current version (a delete marker: the key looks absent)
  std::string etag;     ///< object versions only, without quotes
  std::uint64_t size = 0;
  /// At a destination: the source version this one is a copy of (archie's marker, read
  /// with a HEAD of the version); empty for delete markers and for versions archie did not write.
  std::string source_version_id;
};

/// Newest first.
using version_history = std::vector<object_version>;

/// One page of a bucket's versions (ListObjectVersions): entries of every key on it, in the
/// server's order (keys ascending, each key's versions newest first).
struct version_page {
  std::vector<std::pair<std::string, object_version>> entries;  ///< (key, version)
  bool truncated = false;
  std::string next_key_marker;
  std::string next_version_id_marker;
};

/// Metadata key recording, on each version archie writes with versions = "all", the source
/// version it copies: the history is compared by it, so a redelivery copies nothing twice.
inline constexpr const char* source_version_metadata = "archie-source-version-id";

}  // namespace archie::store
