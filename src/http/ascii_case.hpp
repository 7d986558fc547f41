#pragma once
// ASCII lower case, for what HTTP compares without regard to case (header names, host
// names, error texts): no locale, bytes outside A-Z unchanged.
#include <string>
#include <string_view>

namespace archie::http {

inline std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

}  // namespace archie::http
