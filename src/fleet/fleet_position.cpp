#include "fleet/fleet_position.hpp"

#include <algorithm>

namespace archie::fleet {

fleet_position fleet_position::from_keys(std::vector<std::string> keys, const std::string& self) {
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  auto it = std::find(keys.begin(), keys.end(), self);
  if (it == keys.end()) return fleet_position{keys.size() + 1, keys.size()};
  return fleet_position{keys.size(), static_cast<std::size_t>(it - keys.begin())};
}

}  // namespace archie::fleet
