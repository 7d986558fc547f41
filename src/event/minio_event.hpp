#pragma once
// Turns one MinIO bucket notification (the NATS message body) into the replication work it
// implies. Pure and total: no I/O, and malformed input comes back as a decode_error, never as an
// exception, because one poisoned message must not take the worker down.
#include <boost/system/result.hpp>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace archie::event {

enum class event_action {
  copy,           ///< object data created or replaced: copy the object
  copy_metadata,  ///< tags, retention or legal hold changed; the data did not
  remove,         ///< object or version removed: propagate once the source confirms it is gone
  skip,           ///< not replication work; skip_reason says why
};

const char* to_string(event_action a);

/// The event name as a metric label: one of a closed set (the names archie knows, a known
/// family's prefix such as "s3:ObjectAccessed:", or "other"), whatever the sender put there.
std::string_view metric_event_name(std::string_view event_name);

struct object_event {
  std::string event_name;  ///< always "s3:"-prefixed, even when the sender (AWS) omits it
  event_action action = event_action::skip;
  std::string bucket;
  /// The object name, form-url-decoded exactly once. Raw bytes: never Unicode-normalised, since
  /// NFC and NFD spellings are different objects to S3.
  std::string key;
  std::uint64_t size = 0;
  /// False for removals and also for zero-byte objects: MinIO omits a size of 0 (Go omitempty).
  bool has_size = false;
  std::string etag;  ///< no quotes; multipart ETags end in "-N"
  std::string content_type;
  std::string version_id;  ///< empty: unversioned bucket; "null": versioning suspended
  std::string sequencer;   ///< one node's modification time (hex ns): not a global order
  bool lifecycle_expiry = false;  ///< an ILM expiry, not a client's delete
  std::vector<std::pair<std::string, std::string>> user_metadata;  ///< in payload order
  /// action == skip only: "noop_delete", "not_replication_work" or "unknown_event_name".
  std::string skip_reason;
};

/// Every code a decode_error can carry; they are metric labels, so the set is closed.
///  - not_json, empty: the payload is not JSON, or blank
///  - no_records: no object at the top, or Records absent, null or []
///  - records_not_array: Records is some other JSON type
///  - bad_record: a record, or a member of it or of the envelope, has the wrong JSON type
///  - missing_field: eventName, s3.bucket.name or s3.object.key absent, null or empty
///  - bad_key_escape: s3.object.key has a '%' not followed by two hex digits
///  - key_mismatch: the decoded key disagrees with the envelope's Key
///  - bad_size: s3.object.size present but not a non-negative integer
inline constexpr std::array<std::string_view, 9> decode_error_codes{
    "not_json",   "empty",         "no_records",     "records_not_array", "bad_record",
    "bad_size",   "missing_field", "bad_key_escape", "key_mismatch",
};

struct decode_error {
  std::string code;    ///< one of decode_error_codes
  std::string reason;  ///< human text naming the field; single line, printable ASCII
};

/// Decodes every record in Records; one bad record rejects the whole message. When the envelope
/// has a Key, each record's "<bucket>/<decoded key>" must equal it, so a corrupted event cannot
/// copy or delete the wrong object. Damage inside a record whose action is skip is tolerated:
/// the record is returned with only its name, action and skip_reason.
using decode_result = boost::system::result<std::vector<object_event>, decode_error>;

decode_result decode_minio_event(std::string_view payload);

}  // namespace archie::event
