#pragma once
// Reading what the GCS JSON API answers: object resources (JSON, or the headers of an
// alt=media download), listings, error bodies, resumable-session answers and Retry-After.
// These are bytes from a server or a proxy archie does not control, so every function here is
// total: any input gives a value or "malformed", never a crash, an exception or a wrong-sized
// read. Kept apart from gcs_client.cpp (no I/O, no Asio) so that the unit tests and the fuzz
// targets (tests/fuzz) call them directly.
#include "http/client.hpp"
#include "store/gcs/gcs_client.hpp"
#include "store/json_fields.hpp"

#include <boost/json/object.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace archie::store::gcs {

/// Lower-case hex of the bytes a base64 text encodes ("1B2M2Y8AsgTpgAmY7PhCfg==" ->
/// "d41d8cd98f00b204e9800998ecf8427e"); empty unless the text is whole base64 quads with at
/// most two trailing '='.
std::string base64_to_hex(std::string_view b64);

using store::json_string;
using store::parse_json_object;

/// object_metadata from a JSON API object resource (mapping in gcs_client.hpp).
object_metadata object_from_json(const boost::json::object& o);
/// An object resource body; nullopt when it is not a JSON object.
std::optional<object_metadata> parse_object(std::string_view body);
/// object_metadata from the headers of an alt=media download: x-goog-generation,
/// x-goog-metageneration, x-goog-hash, x-goog-stored-content-length (else the Content-Range
/// total, else Content-Length), ETag, content headers and x-goog-meta-*.
object_metadata object_from_headers(const http::response& r);
/// One page of an objects.list answer; nullopt when the body is not a JSON object. Items that
/// are not objects are skipped.
std::optional<list_page> parse_list_page(std::string_view body);
/// One page of an objects.list versions=true answer; nullopt when the body is not a JSON object.
std::optional<generation_page> parse_generation_page(std::string_view body);
/// buckets.get: versioning.enabled (false when absent); nullopt when the body is not a JSON object.
std::optional<bool> parse_versioning_enabled(std::string_view body);

/// What a JSON API error body says:
/// {"error": {"code": 404, "message": "...", "errors": [{"reason": "notFound", ...}]}}.
struct error_body {
  std::string reason;   ///< errors[0].reason; empty when absent
  std::string message;  ///< error.message, or the first line (<= 200 bytes) of a non-JSON body
};
error_body parse_error_body(std::string_view body);

/// The bytes a 308 says the server holds: "Range: bytes=0-N" -> N+1, no Range -> 0; nullopt
/// when the header is malformed.
std::optional<std::uint64_t> persisted_from_308(const http::response& r);
/// Applies a resumable-session answer (a 308, or the finished object) to `s`. Returns what
/// was wrong with it, empty on success. s.persisted never exceeds s.total: upload_chunk
/// slices the caller's buffer at that offset.
std::string apply_session_answer(resumable_session& s, const http::response& r);

/// Retry-After in whole seconds, clamped to [0, max_seconds]; 0 when absent or not a number.
int retry_after_seconds(const http::response& r, int max_seconds);

}  // namespace archie::store::gcs
