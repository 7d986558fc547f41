#include "event/minio_event.hpp"

#include "event/form_url.hpp"

#include <boost/json.hpp>

#include <cmath>
#include <optional>
#include <span>

namespace archie::event {

namespace json = boost::json;

const char* to_string(event_action a) {
  switch (a) {
    case event_action::copy: return "copy";
    case event_action::copy_metadata: return "copy_metadata";
    case event_action::remove: return "remove";
    case event_action::skip: return "skip";
  }
  return "skip";
}

namespace {

using failure = std::optional<decode_error>;

decode_error fail(const char* code, std::string reason) { return {code, std::move(reason)}; }

struct classification {
  event_action action;
  const char* skip_reason;
};

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

std::string normalise_event_name(std::string_view name) {
  // AWS S3 sends "ObjectCreated:Put"; MinIO sends "s3:ObjectCreated:Put". Match one spelling.
  return starts_with(name, "s3:") ? std::string(name) : "s3:" + std::string(name);
}

constexpr std::string_view data_created[] = {
    "s3:ObjectCreated:Put", "s3:ObjectCreated:Post", "s3:ObjectCreated:Copy",
    "s3:ObjectCreated:CompleteMultipartUpload"};
constexpr std::string_view metadata_changed[] = {
    "s3:ObjectCreated:PutRetention", "s3:ObjectCreated:PutLegalHold", "s3:ObjectCreated:PutTagging",
    "s3:ObjectCreated:DeleteTagging", "s3:ObjectTagging:Put", "s3:ObjectTagging:Delete"};  // the last two: AWS
constexpr std::string_view removed[] = {
    "s3:ObjectRemoved:Delete", "s3:ObjectRemoved:DeleteMarkerCreated", "s3:ObjectRemoved:DeleteAllVersions",
    "s3:LifecycleDelMarkerExpiration:Delete"};
constexpr std::string_view other_families[] = {
    "s3:ObjectAccessed:", "s3:Replication:", "s3:ObjectRestore:", "s3:ObjectTransition:", "s3:Scanner:",
    "s3:Bucket"};

classification classify(std::string_view name) {
  for (auto n : data_created)
    if (name == n) return {event_action::copy, ""};
  for (auto n : metadata_changed)
    if (name == n) return {event_action::copy_metadata, ""};
  for (auto n : removed)
    if (name == n) return {event_action::remove, ""};
  // A DELETE of a key that did not exist: there is nothing to propagate.
  if (name == "s3:ObjectRemoved:NoOP") return {event_action::skip, "noop_delete"};
  for (auto f : other_families)
    if (starts_with(name, f)) return {event_action::skip, "not_replication_work"};
  // Kept apart from the known families so that a name a newer MinIO adds (maybe one that does
  // change data) shows up in metrics instead of vanishing silently.
  return {event_action::skip, "unknown_event_name"};
}

}  // namespace

std::string_view metric_event_name(std::string_view name) {
  using names = std::span<const std::string_view>;
  for (names list : {names(data_created), names(metadata_changed), names(removed)})
    for (auto n : list)
      if (name == n) return n;
  if (name == "s3:ObjectRemoved:NoOP") return "s3:ObjectRemoved:NoOP";
  // Families match by prefix, so the rest of the name is the sender's: never a label value.
  for (auto f : other_families)
    if (starts_with(name, f)) return f;
  return "other";
}

namespace {

// Reasons land in logs and in dead-letter headers, where a raw key could smuggle a newline or
// run on for kilobytes: escape everything outside printable ASCII and cap the length.
std::string in_quotes(std::string_view s) {
  static constexpr std::size_t max_bytes = 160;
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out = "\"";
  for (std::size_t i = 0; i < s.size() && i < max_bytes; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 0xF];
    }
  }
  if (s.size() > max_bytes) out += "...";
  out += '"';
  return out;
}

std::string kind_of(const json::value& v) { return std::string(json::to_string(v.kind())); }

// MinIO encodes a nil Go map as null (requestParameters of internal events), so null is read
// as absent everywhere.
const json::value* member(const json::object& o, std::string_view name) {
  const json::value* v = o.if_contains(name);
  return v && !v->is_null() ? v : nullptr;
}

failure read_string(const json::object& o, std::string_view name, const std::string& where, std::string& out) {
  const json::value* v = member(o, name);
  if (!v) return {};
  const json::string* s = v->if_string();
  if (!s) return fail("bad_record", where + "." + std::string(name) + ": expected a string, got " + kind_of(*v));
  out.assign(s->data(), s->size());
  return {};
}

failure read_object(const json::object& o, std::string_view name, const std::string& where,
                    const json::object*& out) {
  out = nullptr;
  const json::value* v = member(o, name);
  if (!v) return {};
  out = v->if_object();
  if (!out) return fail("bad_record", where + "." + std::string(name) + ": expected an object, got " + kind_of(*v));
  return {};
}

failure require_object(const json::object& o, std::string_view name, const std::string& where,
                       const json::object*& out) {
  if (auto f = read_object(o, name, where, out)) return f;
  if (!out) return fail("missing_field", where + "." + std::string(name) + ": absent");
  return {};
}

failure read_size(const json::object& object, const std::string& where, object_event& ev) {
  const json::value* v = member(object, "size");
  if (!v) return {};
  const std::string field = where + ".size";
  if (const std::int64_t* i = v->if_int64()) {
    if (*i < 0) return fail("bad_size", field + ": negative (" + std::to_string(*i) + ")");
    ev.size = static_cast<std::uint64_t>(*i);
  } else if (const std::uint64_t* u = v->if_uint64()) {
    ev.size = *u;
  } else if (const double* d = v->if_double()) {
    // Go writes int64 as an integer literal; accept a float only when it is an exact integer.
    static constexpr double exact_limit = 9007199254740992.0;  // 2^53
    if (!(*d >= 0 && *d <= exact_limit && std::floor(*d) == *d))
      return fail("bad_size", field + ": not a non-negative integer");
    ev.size = static_cast<std::uint64_t>(*d);
  } else {
    return fail("bad_size", field + ": expected a number, got " + kind_of(*v));
  }
  ev.has_size = true;
  return {};
}

failure read_user_metadata(const json::object& object, const std::string& where, object_event& ev) {
  const json::object* meta = nullptr;
  if (auto f = read_object(object, "userMetadata", where, meta)) return f;
  if (!meta) return {};
  for (const auto& kv : *meta) {
    const json::string* s = kv.value().if_string();
    if (!s)
      return fail("bad_record", where + ".userMetadata[" + in_quotes(kv.key()) + "]: expected a string, got " +
                                    kind_of(kv.value()));
    ev.user_metadata.emplace_back(std::string(kv.key()), std::string(s->data(), s->size()));
  }
  return {};
}

bool contains_ignoring_ascii_case(std::string_view haystack, std::string_view needle) {
  auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
  if (needle.size() > haystack.size()) return false;
  for (std::size_t i = 0; i + needle.size() <= haystack.size(); ++i) {
    std::size_t j = 0;
    while (j < needle.size() && lower(haystack[i + j]) == lower(needle[j])) ++j;
    if (j == needle.size()) return true;
  }
  return false;
}

failure read_source(const json::object& record, const std::string& where, object_event& ev) {
  const json::object* source = nullptr;
  if (auto f = read_object(record, "source", where, source)) return f;
  if (!source) return {};
  std::string host, user_agent;
  if (auto f = read_string(*source, "host", where + ".source", host)) return f;
  if (auto f = read_string(*source, "userAgent", where + ".source", user_agent)) return f;
  // MinIO moved the marker from host to userAgent in 2023 and changed its case before that.
  static constexpr std::string_view marker = "internal: [ilm-e";
  const bool marked = contains_ignoring_ascii_case(host, marker) || contains_ignoring_ascii_case(user_agent, marker);
  // Any client can send that User-Agent with its DELETE. What it cannot do is come without
  // itself: MinIO gives every API request an x-amz-request-id and names the requester's
  // access key in userIdentity.principalId; its lifecycle scanner's events have neither.
  std::string principal, request_id;
  if (const json::object* identity = nullptr; !read_object(record, "userIdentity", where, identity) && identity)
    read_string(*identity, "principalId", where + ".userIdentity", principal);
  if (const json::object* response = nullptr; !read_object(record, "responseElements", where, response) && response)
    read_string(*response, "x-amz-request-id", where + ".responseElements", request_id);
  ev.lifecycle_expiry = marked && principal.empty() && request_id.empty();
  return {};
}

// The envelope Key is "<bucket>/<raw name>"; decoding the escaped key must land on it.
bool matches_envelope_key(std::string_view envelope_key, const object_event& ev) {
  return envelope_key.size() == ev.bucket.size() + 1 + ev.key.size() && starts_with(envelope_key, ev.bucket) &&
         envelope_key[ev.bucket.size()] == '/' && envelope_key.substr(ev.bucket.size() + 1) == ev.key;
}

failure read_object_fields(const json::object& record, const std::string& where, const json::string* envelope_key,
                           object_event& ev) {
  const json::object* s3 = nullptr;
  const json::object* bucket = nullptr;
  const json::object* object = nullptr;
  if (auto f = require_object(record, "s3", where, s3)) return f;
  if (auto f = require_object(*s3, "bucket", where + ".s3", bucket)) return f;
  if (auto f = require_object(*s3, "object", where + ".s3", object)) return f;

  if (auto f = read_string(*bucket, "name", where + ".s3.bucket", ev.bucket)) return f;
  if (ev.bucket.empty()) return fail("missing_field", where + ".s3.bucket.name: absent or empty");

  const std::string obj = where + ".s3.object";
  std::string escaped_key;
  if (auto f = read_string(*object, "key", obj, escaped_key)) return f;
  if (escaped_key.empty()) return fail("missing_field", obj + ".key: absent or empty");
  bool ok = false;
  ev.key = form_url_decode(escaped_key, ok);
  if (!ok) return fail("bad_key_escape", obj + ".key: '%' not followed by two hex digits in " + in_quotes(escaped_key));
  if (envelope_key && !matches_envelope_key(*envelope_key, ev))
    return fail("key_mismatch", obj + ".key decodes to " + in_quotes(ev.bucket + "/" + ev.key) + " but Key is " +
                                    in_quotes(*envelope_key));

  if (auto f = read_size(*object, obj, ev)) return f;
  if (auto f = read_string(*object, "eTag", obj, ev.etag)) return f;
  if (auto f = read_string(*object, "contentType", obj, ev.content_type)) return f;
  if (auto f = read_string(*object, "versionId", obj, ev.version_id)) return f;
  if (auto f = read_string(*object, "sequencer", obj, ev.sequencer)) return f;
  if (auto f = read_user_metadata(*object, obj, ev)) return f;
  return read_source(record, where, ev);
}

failure decode_record(const json::value& value, std::size_t index, const json::string* envelope_key,
                      object_event& ev) {
  const std::string where = "Records[" + std::to_string(index) + "]";
  const json::object* record = value.if_object();
  if (!record) return fail("bad_record", where + ": expected an object, got " + kind_of(value));

  std::string name;
  if (auto f = read_string(*record, "eventName", where, name)) return f;
  if (name.empty()) return fail("missing_field", where + ".eventName: absent or empty");
  ev.event_name = normalise_event_name(name);
  const classification c = classify(ev.event_name);
  ev.action = c.action;
  ev.skip_reason = c.skip_reason;

  failure f = read_object_fields(*record, where, envelope_key, ev);
  if (f && ev.action == event_action::skip) {
    // Nothing will be done with this record, so damage in it is no reason to dead-letter the
    // message; drop the half-read fields so nobody acts on them.
    object_event bare;
    bare.event_name = std::move(ev.event_name);
    bare.action = ev.action;
    bare.skip_reason = std::move(ev.skip_reason);
    ev = std::move(bare);
    return {};
  }
  return f;
}

bool is_blank(std::string_view s) { return s.find_first_not_of(" \t\r\n") == std::string_view::npos; }

}  // namespace

decode_result decode_minio_event(std::string_view payload) {
  if (is_blank(payload)) return fail("empty", "payload is empty");

  boost::system::error_code ec;
  const json::value doc = json::parse(payload, ec);
  if (ec) return fail("not_json", "payload is not JSON: " + ec.message());

  const json::object* envelope = doc.if_object();
  if (!envelope) return fail("no_records", "payload is a JSON " + kind_of(doc) + ", not an object with Records");

  const json::value* records_value = member(*envelope, "Records");
  if (!records_value) return fail("no_records", "Records: absent");
  const json::array* records = records_value->if_array();
  if (!records) return fail("records_not_array", "Records: expected an array, got " + kind_of(*records_value));
  if (records->empty()) return fail("no_records", "Records: empty");

  // MinIO's envelope names the one object it describes; AWS payloads have no envelope Key.
  const json::string* envelope_key = nullptr;
  if (const json::value* k = member(*envelope, "Key")) {
    envelope_key = k->if_string();
    if (!envelope_key) return fail("bad_record", "Key: expected a string, got " + kind_of(*k));
  }

  std::vector<object_event> events(records->size());
  for (std::size_t i = 0; i < records->size(); ++i)
    if (failure f = decode_record((*records)[i], i, envelope_key, events[i])) return std::move(*f);
  return events;
}

}  // namespace archie::event
