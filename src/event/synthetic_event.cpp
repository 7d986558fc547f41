#include "event/synthetic_event.hpp"

#include "event/form_url.hpp"

#include <boost/json.hpp>

#include <chrono>
#include <cstdio>
#include <ctime>

namespace archie::event {
namespace json = boost::json;
namespace {

std::string event_json(const char* event_name, const synthetic_object& o, bool created) {
  auto now = std::chrono::system_clock::now();
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
  std::time_t secs = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char when[64];
  std::snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>((ns / 1000000) % 1000));
  char sequencer[17];
  std::snprintf(sequencer, sizeof sequencer, "%016llX", static_cast<unsigned long long>(ns));

  json::object object{{"key", form_url_encode(o.key)}};
  if (created) {
    if (o.size > 0) object["size"] = o.size;  // MinIO omits a zero size (Go omitempty)
    if (!o.etag.empty()) object["eTag"] = o.etag;
  }
  object["sequencer"] = sequencer;
  json::object identity{{"principalId", backfill_identity}};
  json::object record{
      {"eventVersion", "2.0"},
      {"eventSource", "minio:s3"},
      {"awsRegion", ""},
      {"eventTime", when},
      {"eventName", event_name},
      {"userIdentity", identity},
      {"requestParameters", json::object{{"principalId", backfill_identity}, {"region", ""}, {"sourceIPAddress", ""}}},
      {"responseElements", json::object{}},
      {"s3", json::object{{"s3SchemaVersion", "1.0"},
                          {"configurationId", "Config"},
                          {"bucket", json::object{{"name", o.bucket},
                                                  {"ownerIdentity", identity},
                                                  {"arn", "arn:aws:s3:::" + o.bucket}}},
                          {"object", std::move(object)}}},
      {"source", json::object{{"host", ""}, {"port", ""}, {"userAgent", backfill_identity}}},
  };
  json::object envelope{{"EventName", event_name},
                        {"Key", o.bucket + "/" + o.key},
                        {"Records", json::array{std::move(record)}}};
  return json::serialize(envelope);
}

}  // namespace

std::string synthetic_put_event(const synthetic_object& o) { return event_json("s3:ObjectCreated:Put", o, true); }
std::string synthetic_delete_event(const synthetic_object& o) { return event_json("s3:ObjectRemoved:Delete", o, false); }

}  // namespace archie::event
