#pragma once
// The per-record decisions of the engine, without I/O: what one decoded record asks for
// (copy, remove, or settle at once with a code), and how several records' outcomes merge into
// the one acknowledgement a message gets.
#include "config/config.hpp"
#include "event/minio_event.hpp"
#include "queue/settle/message_outcome.hpp"
#include "route/router.hpp"
#include "store/store_error.hpp"

#include <optional>
#include <span>

namespace archie::engine {

struct record_plan {
  enum class work { none, copy, remove };
  work what = work::none;
  /// The event changed tags, retention or legal hold, not bytes: the destinations hold the
  /// object already, so they are asked first (what differs is written, nothing else), and
  /// the source is not read with a GET.
  bool metadata_only = false;
  std::optional<queue::message_outcome> settled;  ///< work::none: the outcome, decided already
  route::decision route;                    ///< copy/remove: where to
};

/// Skip, metadata-skip, lifecycle-skip, unrouted (ack or term), excluded, or the work to do.
record_plan plan_record(const event::object_event& ev, const config::replication_config& cfg,
                        const route::router& router);

/// The outcome of a message from its records': a nak wins over a term (no retry is lost), a
/// term over an ack; among equals the later record's.
queue::message_outcome merge_outcomes(const queue::message_outcome& so_far, queue::message_outcome next);

/// How a store failure becomes a message outcome: retryable and permission problems wait (nak
/// with backoff: an operator can fix them and nothing is lost); permanent refusals end the
/// message (term, dead-lettered) because redelivery cannot help. Code: "<prefix>_<kind>".
queue::message_outcome outcome_for(const store::store_error& e, const char* code_prefix);

/// The outcome of an event from its destinations' failures (one entry per destination, empty
/// where it succeeded): nullopt when none failed; a nak when any failure may pass (code of
/// the first failure, "destination_retryable" when that one is permanent); a term when every
/// failure is permanent. The reason lists every failure.
std::optional<queue::message_outcome> destination_failures_outcome(
    std::span<const std::optional<store::store_error>> failures);

}  // namespace archie::engine
