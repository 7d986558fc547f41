#pragma once
// NATS header values are lines of text: a CR or LF inside one (a key such as "a%0D%0Ab" in
// an event) would end the header and start another that `dead-letters replay` trusts. Values
// archie writes from data it does not control are percent-encoded: every byte outside
// printable ASCII, and '%' itself, becomes %XX; readers decode them.
#include <cstddef>
#include <string>
#include <string_view>

namespace archie::queue {

/// At most `max_size` bytes of encoding; an escape is never cut in half.
std::string encode_header_value(std::string_view value, std::size_t max_size = 4096);
/// The inverse of encode_header_value; text that is not a valid escape is kept as it is.
std::string decode_header_value(std::string_view encoded);

}  // namespace archie::queue
