#pragma once
// How one key of a route compares between the source and one destination, decided from the
// listings where they suffice. Pure: the walk (engine/route_walk) does the I/O.
//
// Listings carry no metadata, so archie's marker (the source ETag recorded on a copy) is only
// read when it can change the answer: sizes equal, and the destination's own ETag differs
// from the source's (a multipart copy with another part size, a GCS composite, a store whose
// ETags are not MD5s). Equal sizes and equal ETags are equal content without asking.
#include "store/object_listing.hpp"

#include <string>
#include <vector>

namespace archie::engine {

enum class key_state { equal, missing, extra, different, excluded };

/// "equal", "missing", "extra", "different", "excluded": report fields.
const char* to_string(key_state s);

struct listed_comparison {
  key_state state = key_state::equal;
  bool needs_marker = false;  ///< undecided: read the destination's marker (compare_marker)
  std::string reason;         ///< for different: what differs
};

/// Source and replica listed under the same key.
listed_comparison compare_listed(const store::listed_entry& source, const store::listed_entry& replica);

/// The replica's recorded source ETag (empty: none) against the source's ETag.
listed_comparison compare_marker(const store::listed_entry& source, const std::string& marker);

/// What repairs one key: a copy when a destination lacks it or holds something else; a removal
/// when the source lacks it and removals were asked for; else nothing.
enum class repair { none, copy, remove };
const char* to_string(repair r);
/// `source_present`: the source lists the key; `states`: the key at each destination.
repair repair_for(bool source_present, const std::vector<key_state>& states, bool delete_extra);

}  // namespace archie::engine
