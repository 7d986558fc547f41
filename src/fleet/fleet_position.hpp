#pragma once
// Where one worker stands in the fleet, as the worker registry sees it at a heartbeat.
#include <cstddef>
#include <string>
#include <vector>

namespace archie::fleet {

struct fleet_position {
  std::size_t workers = 1;  ///< live workers, this one included
  std::size_t rank = 0;     ///< this worker's place among them, 0-based, in registry key order

  /// From the registry's keys (any order) and this worker's ID; a worker whose own entry is
  /// not there yet (its first put failed) counts itself in, last.
  static fleet_position from_keys(std::vector<std::string> keys, const std::string& self);
  bool operator==(const fleet_position&) const = default;
};

}  // namespace archie::fleet
