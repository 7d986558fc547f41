#include "engine/divergence.hpp"

namespace archie::engine {

const char* to_string(key_state s) {
  switch (s) {
    case key_state::equal: return "equal";
    case key_state::missing: return "missing";
    case key_state::extra: return "extra";
    case key_state::different: return "different";
    case key_state::excluded: return "excluded";
  }
  return "equal";
}

listed_comparison compare_listed(const store::listed_entry& source, const store::listed_entry& replica) {
  if (source.size != replica.size)
    return {key_state::different, false,
            "size " + std::to_string(replica.size) + " (source " + std::to_string(source.size) + ")"};
  if (replica.marker) return compare_marker(source, *replica.marker);
  if (!replica.etag.empty() && replica.etag == source.etag) return {key_state::equal, false, {}};
  return {key_state::equal, true, {}};
}

listed_comparison compare_marker(const store::listed_entry& source, const std::string& marker) {
  if (marker == source.etag) return {key_state::equal, false, {}};
  if (marker.empty()) return {key_state::different, false, "no archie-source-etag marker (source ETag " + source.etag + ")"};
  return {key_state::different, false, "copied from ETag " + marker + " (source " + source.etag + ")"};
}

const char* to_string(repair r) {
  switch (r) {
    case repair::none: return "none";
    case repair::copy: return "copy";
    case repair::remove: return "remove";
  }
  return "none";
}

repair repair_for(bool source_present, const std::vector<key_state>& states, bool delete_extra) {
  bool copy = false, remove = false;
  for (auto s : states) {
    copy = copy || s == key_state::missing || s == key_state::different;
    remove = remove || s == key_state::extra;
  }
  // One event repairs every destination of the route: the worker re-reads the source.
  if (source_present) return copy ? repair::copy : repair::none;
  return remove && delete_extra ? repair::remove : repair::none;
}

}  // namespace archie::engine
