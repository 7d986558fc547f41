#include "store/json_fields.hpp"

#include <boost/json/parse.hpp>

namespace archie::store {

std::optional<boost::json::object> parse_json_object(std::string_view body) {
  boost::system::error_code ec;
  auto v = boost::json::parse(body, ec);
  if (ec || !v.is_object()) return std::nullopt;
  return std::move(v.as_object());
}

std::string json_string(const boost::json::object& o, std::string_view name) {
  auto it = o.find(name);
  if (it == o.end()) return {};
  if (const auto* s = it->value().if_string()) return std::string(*s);
  return {};
}

double json_number(const boost::json::object& o, std::string_view name) {
  auto it = o.find(name);
  if (it == o.end() || !it->value().is_number()) return 0;
  return it->value().to_number<double>();
}

}  // namespace archie::store
