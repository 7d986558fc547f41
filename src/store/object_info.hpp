#pragma once
// What archie knows about one object: size, ETag and the metadata it preserves on copies.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace archie::store {

struct object_info {
  std::uint64_t size = 0;
  std::string etag;  ///< without quotes; multipart ETags end in "-N"
  std::string content_type;
  std::string content_encoding;
  std::string content_disposition;
  std::string cache_control;
  /// User metadata, names lower-case and without the x-amz-meta- / x-goog-meta- prefix.
  std::vector<std::pair<std::string, std::string>> user_metadata;
  std::string last_modified;
  std::string version_id;

  const std::string* metadata(std::string_view name) const {
    for (const auto& [k, v] : user_metadata)
      if (k == name) return &v;
    return nullptr;
  }
};

}  // namespace archie::store
