#include "http/percent_encoding.hpp"

namespace archie::http {

std::string percent_encode(std::string_view s, bool keep_slash) {
  std::string out;
  out.reserve(s.size() * 3);
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (is_unreserved(c) || (c == '/' && keep_slash)) out.push_back(ch);
    else append_percent_escape(out, c);
  }
  return out;
}

}  // namespace archie::http
