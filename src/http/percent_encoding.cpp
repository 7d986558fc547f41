#include "http/percent_encoding.hpp"

namespace archie::http {

std::string percent_encode(std::string_view s, bool keep_slash) {
  static constexpr char upper_hex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size() * 3);
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                      c == '.' || c == '_' || c == '~';
    if (unreserved || (c == '/' && keep_slash)) {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(upper_hex[c >> 4]);
      out.push_back(upper_hex[c & 0xf]);
    }
  }
  return out;
}

}  // namespace archie::http
