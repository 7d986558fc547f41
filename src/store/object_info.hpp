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
  std::string content_language;
  std::string expires;           ///< the HTTP date, as the source gave it
  std::string website_redirect;  ///< x-amz-website-redirect-location
  /// User metadata, names lower-case and without the x-amz-meta- / x-goog-meta- prefix.
  std::vector<std::pair<std::string, std::string>> user_metadata;
  std::string last_modified;
  std::string version_id;
  /// The object's tags in canonical form: "k=v&k2=v2", keys sorted, both URI-encoded (S3's
  /// x-amz-tagging form); empty when it has none.
  std::string tagging;
  /// How many tags the server says the object has (x-amz-tagging-count); -1 when it does not
  /// say. A count above 0 is the reason to read the tags themselves.
  int tag_count = -1;
  /// Object lock: "GOVERNANCE" or "COMPLIANCE" with its retain-until date (RFC 3339, to the
  /// second), and the legal hold ("ON", "OFF" or empty when the server says nothing).
  std::string lock_mode;
  std::string lock_retain_until;
  std::string legal_hold;
  /// The object's flexible checksum as an S3 source reports it (x-amz-checksum-<algorithm>,
  /// asked with x-amz-checksum-mode: ENABLED): the algorithm lower-case ("crc32", "crc32c",
  /// "crc64nvme", "sha1", "sha256") and the base64 value; a composite one (made of a
  /// multipart upload's part checksums) ends in "-N". Empty when the source says none.
  std::string checksum_algorithm;
  std::string checksum;

  const std::string* metadata(std::string_view name) const {
    for (const auto& [k, v] : user_metadata)
      if (k == name) return &v;
    return nullptr;
  }
};

}  // namespace archie::store
