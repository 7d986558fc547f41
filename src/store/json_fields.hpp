#pragma once
// Reading JSON that a server sent (GCS answers, OAuth tokens, AWS credential endpoints): total
// functions, so a malformed body is "absent", never an exception.
#include <boost/json/object.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace archie::store {

/// The body as a JSON object; nullopt when it is not JSON or not an object.
std::optional<boost::json::object> parse_json_object(std::string_view body);
/// The string member `name` of `o`; empty when it is absent or not a string.
std::string json_string(const boost::json::object& o, std::string_view name);
/// The number member `name` of `o` (integer or not); 0 when it is absent or not a number.
double json_number(const boost::json::object& o, std::string_view name);

}  // namespace archie::store
