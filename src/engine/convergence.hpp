#pragma once
// Making every destination of one key equal to what its source holds. Write the source's
// state (copy or remove), read the source again, and while it changed meanwhile, write the
// new state: a concurrent change, or another worker's stale write, may have been undone by
// ours. The rounds are bounded; a key that keeps changing is given a rest (nak). Destinations
// are independent: one that refuses drops out, the others carry on.
#include "pipe/part_buffer_pool.hpp"
#include "pipe/read_ahead.hpp"
#include "queue/settle/message_outcome.hpp"
#include "route/router.hpp"
#include "store/store_catalog.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace archie::engine {

/// What the source holds for a key: nothing, or one version of an object.
struct source_state {
  bool exists = false;
  store::object_info info;
};

/// The metadata a copy carries: the source's, with archie's marker set to this source's ETag
/// (a marker the source already has, as a replica itself, is replaced, never sent twice).
store::object_info with_source_etag(const store::object_info& info);

/// Same existence, and for objects the same ETag, size, modification time and metadata.
bool same_version(const source_state& a, const source_state& b);

/// HEAD of the source key (and its tags when it has some): absent is a state, not an error.
boost::asio::awaitable<store::result<source_state>> read_source(store::source& source, const std::string& bucket,
                                                                const std::string& key);

/// Reads the tags into `info` when the server said there are some (tag_count > 0): objects
/// without tags cost no request.
boost::asio::awaitable<std::optional<store::store_error>> read_source_tags(store::source& source,
                                                                           const std::string& bucket,
                                                                           const std::string& key,
                                                                           store::object_info& info);

/// A replica of the right version whose tags or object lock differ from `wanted`: writes
/// only those, on the version `replica` names (replica.version_id).
boost::asio::awaitable<store::result<store::done>> write_metadata(store::destination& dest, const route::target& target,
                                                                  const store::object_info& replica,
                                                                  const store::object_info& wanted);

struct convergence_limits {
  std::size_t part_size = 16u << 20;  ///< objects up to one part may be copied without asking first
  std::size_t parts_in_flight = 8;
  int max_rounds = 5;  ///< writes per event before giving the key a rest (nak "source_churn")
};

/// One key, the state its source was seen in, and where it goes. converge() takes it by
/// reference (GCC 12 rule 2, async/gcc12_coroutines.hpp) and consumes `ahead`.
struct convergence_job {
  std::string bucket;  ///< the source's
  std::string key;
  std::string source_store;
  source_state start;
  std::vector<route::target> targets;
  /// Write even where a destination holds this version (metadata events).
  bool force = false;
  /// The destinations most likely lack this version (a first delivery of a change): an object
  /// of one part is copied without a HEAD per destination first.
  bool likely_missing = false;
  /// A redelivery: an earlier attempt may have left an open multipart upload to abort.
  bool earlier_attempt_possible = true;
  pipe::read_ahead ahead;  ///< of `start`, when the GET that told `start` read some of it
  std::uint64_t stream_sequence = 0;  ///< log lines only
};

struct convergence_result {
  /// Set when the event cannot be done now: its outcome (nak or term), with the reasons.
  std::optional<queue::message_outcome> failure;
  source_state final_state;  ///< what every destination holds now (the source's last state)
  bool wrote = false;        ///< at least one destination was written or removed
  std::uint64_t copied_bytes = 0;
  int tag_writes = 0;        ///< destinations that held the version and got only its new tags
  int rounds = 0;            ///< write rounds (1 when the source held still)
  double write_ms = 0;       ///< reading parts and writing every destination
  double check_ms = 0;       ///< re-reading the source after writing
};

boost::asio::awaitable<convergence_result> converge(boost::asio::any_io_executor io, pipe::part_buffer_pool& pool,
                                                    store::store_catalog& stores, const convergence_limits& limits,
                                                    convergence_job& job);

}  // namespace archie::engine
