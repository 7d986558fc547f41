#pragma once
// versions = "all": a destination holds every version of a source key, in the source's
// order, delete markers included. Each version archie writes records the source version it
// copies (store::source_version_metadata), so the two histories are compared by source
// version ID, and a redelivery, an event out of order or a second event for the same change
// copies nothing twice. Whatever event arrives for a key, the whole history of that key is
// brought level: an event for version 3 that arrives before the one for version 2 copies 2
// and then 3, and the one for 2 finds nothing to do.
//
// What "level" means (plan_history):
// - every source object version the destination lacks is copied, oldest first; a source
//   delete marker just before one of them is written as a delete marker first (when the
//   destination propagates deletes);
// - copies twice or out of the source's order (two workers racing on one key: the key lock
//   holds within one process only) are removed, keeping the longest run in order; a version
//   missing below copies the destination has makes those copies be written again after it
//   and the old ones removed. So the copies are the source's versions, once each, in its
//   order. Removals always come after the copies of a plan: a copy written again elsewhere
//   goes only once its new copy exists, so a plan cut short loses nothing;
// - afterwards the destination's current version is the source's: the same version, or a
//   delete marker when the source's latest is one (propagating destinations only);
// - with deletes = "propagate", versions whose source version was deleted for good are
//   deleted for good at the destination, and delete markers on top of what is current again
//   at the source (its delete marker was deleted) are removed. With deletes = "ignore", the
//   destination keeps everything it ever got.
// Tags and object lock are written with each version as it is copied. A tag, retention or
// legal-hold change at the source (a metadata event, which names its version) is written
// to that version's copy alone, without copying bytes.
#include "engine/convergence.hpp"
#include "pipe/part_buffer_pool.hpp"
#include "queue/settle/message_outcome.hpp"
#include "route/router.hpp"
#include "store/object_version.hpp"
#include "store/store_catalog.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace archie::engine {

struct history_step {
  enum class kind {
    copy,            ///< write the source version `version_id` as the destination's newest
    delete_marker,   ///< put a delete marker on top (a DELETE without a version)
    remove_version,  ///< delete the destination's version `version_id` for good
  };
  kind what = kind::copy;
  std::string version_id;
  bool operator==(const history_step&) const = default;
};

/// The steps, in order, that bring `replica` (a destination's history, newest first, with
/// source_version_id filled in) level with `source` (newest first). Pure: no I/O.
/// `markers_kept` false (GCS, store::destination::holds_delete_markers): the source's delete
/// markers between versions are left out, and only a latest one is mirrored.
std::vector<history_step> plan_history(const store::version_history& source, const store::version_history& replica,
                                       bool propagate_deletes, bool markers_kept);
/// The source history as a destination without delete markers can hold it: its versions,
/// and a delete marker only when it is the latest entry.
store::version_history without_inner_markers(const store::version_history& source);

struct history_job {
  std::string bucket;  ///< the source's
  std::string key;
  std::string source_store;
  std::vector<route::target> targets;  ///< the versions = "all" destinations of the key
  bool earlier_attempt_possible = true;
  /// A tag / retention / legal-hold change: the source version it names (empty: the current
  /// one) gets its copies' metadata compared and written.
  bool metadata_changed = false;
  std::string changed_version;
};

struct history_result {
  std::optional<queue::message_outcome> failure;  ///< nak or term, with the reasons
  int versions_copied = 0;
  int markers_written = 0;
  int versions_removed = 0;
  int tag_writes = 0;  ///< copies given only new tags or object lock
  std::uint64_t copied_bytes = 0;
  int writes() const { return versions_copied + markers_written + versions_removed; }
  bool wrote() const { return writes() + tag_writes > 0; }
};

/// Levels every target's history with the source's, in rounds (list both, plan, write) until
/// a round writes nothing: at most limits.max_rounds, then a nak (source_churn).
boost::asio::awaitable<history_result> sync_history(boost::asio::any_io_executor io, pipe::part_buffer_pool& pool,
                                                    store::store_catalog& stores, const convergence_limits& limits,
                                                    const history_job& job);

}  // namespace archie::engine
