#include "queue/header_value.hpp"

#include "http/percent_encoding.hpp"

#include <algorithm>

namespace archie::queue {

std::string encode_header_value(std::string_view value, std::size_t max_size) {
  std::string out;
  out.reserve(std::min(value.size(), max_size));
  for (char ch : value) {
    auto c = static_cast<unsigned char>(ch);
    const bool plain = c >= 0x20 && c < 0x7f && c != '%';
    if (out.size() + (plain ? 1 : 3) > max_size) break;
    if (plain) out.push_back(ch);
    else http::append_percent_escape(out, c);
  }
  return out;
}

std::string decode_header_value(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      int hi = http::hex_digit_value(s[i + 1]), lo = http::hex_digit_value(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

}  // namespace archie::queue
