#pragma once
// Reading what an S3 server answers: error bodies, ListObjectsV2 and ListMultipartUploads
// pages, and object headers. These are bytes from AWS, MinIO, RGW or a proxy in between, so
// every function here is total: any input gives a value (fields missing from it stay empty),
// never a crash or an exception. Kept apart from s3_client.cpp (no I/O, no Asio) so that the
// unit tests and the fuzz targets (tests/fuzz) call them directly.
#include "http/client.hpp"
#include "store/object_info.hpp"
#include "store/object_version.hpp"
#include "store/s3/s3_client.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace archie::store::s3 {

/// An ETag as sent (header or XML element) without its surrounding double quotes.
std::string unquote(std::string s);

/// object_info from HEAD/GET headers: ETag, size (the Content-Range total when there is one,
/// else Content-Length), content headers, x-amz-version-id and x-amz-meta-*.
object_info info_from_headers(const http::response& r);
/// One of the flexible checksum names S3 puts after x-amz-checksum- (lower-case).
bool is_checksum_algorithm(std::string_view name);
/// An object-lock date in RFC 3339 to the second ("2030-01-01T00:00:00Z"), whatever the
/// precision the server wrote.
std::string lock_date(std::string_view v);

/// What an error answer says: <Error><Code/><Message/><RequestId/></Error>.
struct error_fields {
  std::string code;        ///< empty when the body has none (a HEAD, a proxy's page)
  std::string message;     ///< RGW leaves it empty
  std::string request_id;  ///< from the body, else the x-amz-request-id header
};
error_fields parse_error(const http::response& r);

/// A ListObjectsV2 page; next_continuation_token is set only when IsTruncated is true.
list_page parse_list_objects(std::string_view body);

/// A ListMultipartUploads page.
struct multipart_uploads_page {
  std::vector<multipart_upload> uploads;
  bool truncated = false;  ///< IsTruncated is "true"
  std::string next_key_marker;
  std::string next_upload_id_marker;
};
multipart_uploads_page parse_multipart_uploads(std::string_view body);

/// A ListObjectVersions page: object versions and delete markers of every key on it, in the
/// document's order (per key newest first).
version_page parse_object_versions(std::string_view body);

}  // namespace archie::store::s3
