#pragma once
// MinIO bucket notifications made by archie itself (`archie backfill`): the exact envelope
// and record layout MinIO's NATS target publishes (tests/fixtures/events/README.md), so the
// worker fleet handles them like any other event. They are marked as archie's own:
// userIdentity.principalId and source.userAgent are `backfill_identity`, and the publisher adds
// the NATS header Archie-Origin: backfill.
#include <cstdint>
#include <string>

namespace archie::event {

inline constexpr const char* backfill_identity = "archie-backfill";

struct synthetic_object {
  std::string bucket;
  std::string key;  ///< raw bytes; escaped in the record as MinIO does (Go url.QueryEscape)
  std::uint64_t size = 0;
  std::string etag;  ///< no quotes; empty: omitted
};

/// s3:ObjectCreated:Put for `o` (the worker re-reads the source, so size and ETag are hints).
std::string synthetic_put_event(const synthetic_object& o);
/// s3:ObjectRemoved:Delete for `o` (the worker removes only when the source has no such key).
std::string synthetic_delete_event(const synthetic_object& o);

}  // namespace archie::event
