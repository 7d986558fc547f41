#include "event/form_url.hpp"

namespace archie::event {

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string form_url_decode(std::string_view text, bool& ok) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '+') {
      out += ' ';
    } else if (c != '%') {
      out += c;
    } else {
      const int hi = text.size() - i >= 3 ? hex_value(text[i + 1]) : -1;
      const int lo = hi >= 0 ? hex_value(text[i + 2]) : -1;
      if (lo < 0) {
        // Guessing what a broken escape meant could name a different object: refuse instead.
        ok = false;
        return {};
      }
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    }
  }
  ok = true;
  return out;
}

std::string form_url_encode(std::string_view bytes) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  out.reserve(bytes.size());
  for (char ch : bytes) {
    const auto c = static_cast<unsigned char>(ch);
    const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                            c == '_' || c == '.' || c == '~';
    if (unreserved) {
      out += ch;
    } else if (c == ' ') {
      out += '+';
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

}  // namespace archie::event
