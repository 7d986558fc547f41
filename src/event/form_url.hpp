#pragma once
// Form-urlencoding ("application/x-www-form-urlencoded") decoding, the inverse of Go's
// url.QueryEscape that MinIO applies to object keys in its notifications.
#include <string>
#include <string_view>

namespace archie::event {

/// '+' becomes a space, then each "%XX" (hex, either case) becomes one byte; every other byte
/// is kept as is. The bytes are not validated as UTF-8 or normalised: the result names the
/// object exactly. A '%' not followed by two hex digits sets ok = false and returns "".
std::string form_url_decode(std::string_view text, bool& ok);

/// Go's url.QueryEscape: A-Z a-z 0-9 - _ . ~ stay, a space becomes '+', every other byte
/// "%XX" (upper-case hex). form_url_decode(form_url_encode(k)) == k for any bytes k.
std::string form_url_encode(std::string_view bytes);

}  // namespace archie::event
