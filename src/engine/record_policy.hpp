#pragma once
// The per-record decisions of the engine, without I/O: what one decoded record asks for
// (copy, remove, or settle at once with a code), and how several records' outcomes merge into
// the one acknowledgement a message gets.
#include "config/config.hpp"
#include "event/minio_event.hpp"
#include "queue/message_outcome.hpp"
#include "route/router.hpp"

#include <optional>

namespace archie::engine {

struct record_plan {
  enum class work { none, copy, remove };
  work what = work::none;
  bool force = false;                       ///< copy even when the destination holds this ETag (metadata events)
  std::optional<queue::message_outcome> settled;  ///< work::none: the outcome, decided already
  route::decision route;                    ///< copy/remove: where to
};

/// Skip, metadata-skip, lifecycle-skip, unrouted (ack or term), excluded, or the work to do.
record_plan plan_record(const event::object_event& ev, const config::replication_config& cfg,
                        const route::router& router);

/// The outcome of a message from its records': a nak wins over a term (no retry is lost), a
/// term over an ack; among equals the later record's.
queue::message_outcome merge_outcomes(const queue::message_outcome& so_far, queue::message_outcome next);

}  // namespace archie::engine
