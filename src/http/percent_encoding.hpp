#pragma once
// RFC 3986 percent-encoding, the one spelling S3 (SigV4 canonical URIs and queries), GCS
// (object names in paths) and OAuth form bodies all accept: unreserved characters
// (A-Z a-z 0-9 - . _ ~) stay as they are, every other byte becomes %XX in upper-case hex.
#include <string>
#include <string_view>

namespace archie::http {

/// RFC 3986's unreserved bytes: A-Z a-z 0-9 - . _ ~ (never escaped by any of the encodings).
inline bool is_unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_' || c == '~';
}

/// Appends "%XX" (upper-case hex) for one byte.
inline void append_percent_escape(std::string& out, unsigned char c) {
  static constexpr char upper_hex[] = "0123456789ABCDEF";
  out.push_back('%');
  out.push_back(upper_hex[c >> 4]);
  out.push_back(upper_hex[c & 0xf]);
}

/// The value of one hex digit (either case); -1 for any other character.
inline int hex_digit_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

/// With keep_slash, '/' stays literal (paths); otherwise it is encoded too (one segment,
/// query values, form values).
std::string percent_encode(std::string_view s, bool keep_slash = false);
/// Reverses percent_encode: "%XX" becomes its byte; anything else (a malformed escape too)
/// stays as it is. '+' is a plus, not a space (this is not form encoding).
std::string percent_decode(std::string_view s);

}  // namespace archie::http
