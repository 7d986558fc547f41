#pragma once
// RFC 3986 percent-encoding, the one spelling S3 (SigV4 canonical URIs and queries), GCS
// (object names in paths) and OAuth form bodies all accept: unreserved characters
// (A-Z a-z 0-9 - . _ ~) stay as they are, every other byte becomes %XX in upper-case hex.
#include <string>
#include <string_view>

namespace archie::http {

/// With keep_slash, '/' stays literal (paths); otherwise it is encoded too (one segment,
/// query values, form values).
std::string percent_encode(std::string_view s, bool keep_slash = false);

}  // namespace archie::http
