#include "config/config.hpp"
#include "config/route_overlap.hpp"

#include "config/url_redaction.hpp"

#include "config/detail/table_reader.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <fstream>

#include <pcre2.h>
#include <limits>
#include <sstream>

namespace archie::config {
namespace {

using detail::table_reader;
using namespace std::chrono_literals;
constexpr std::int64_t i64_max = std::numeric_limits<std::int64_t>::max();

void read_tls(table_reader t, tls_config& c) {
  c.enabled = t.boolean("enabled", c.enabled);
  c.verify = t.boolean("verify", c.verify);
  c.ca_file = t.string("ca_file", c.ca_file);
  c.cert_file = t.string("cert_file", c.cert_file);
  c.key_file = t.string("key_file", c.key_file);
  if (c.cert_file.empty() != c.key_file.empty())
    t.fail(c.cert_file.empty() ? "cert_file" : "key_file", "a client certificate needs both cert_file and key_file");
}

void read_nats(table_reader t, nats_config& c) {
  c.urls = t.url_list("urls", c.urls);
  if (c.urls.empty()) t.fail("urls", "needs at least one server URL");
  for (const auto& u : c.urls)
    if (u.find("://") == std::string::npos)
      t.fail("urls", "\"" + redact_userinfo(u) + "\" is not a URL such as nats://host:4222");
  c.name = t.string("name", c.name);
  c.user = t.string("user", c.user);
  c.password = t.secret_value("password", false);
  c.token = t.secret_value("token", false);
  c.creds_file = t.string("creds_file", c.creds_file);
  c.nkey_seed_file = t.string("nkey_seed_file", c.nkey_seed_file);
  if (!c.user.empty() && c.password.empty()) t.fail("password", "user is set, so password is required");
  if (c.user.empty() && !c.password.empty()) t.fail("password", "is set without user");
  int methods = int(!c.user.empty()) + int(!c.token.empty()) + int(!c.creds_file.empty()) + int(!c.nkey_seed_file.empty());
  if (methods > 1) t.fail("user", "choose one authentication method: user/password, token, creds_file or nkey_seed_file");
  read_tls(t.table("tls"), c.tls);
  c.connect_timeout = t.duration("connect_timeout", c.connect_timeout, 100ms, 5min);
  c.reconnect_wait = t.duration("reconnect_wait", c.reconnect_wait, 10ms, 5min);
  c.reconnect_wait_max = t.duration("reconnect_wait_max", c.reconnect_wait_max, 10ms, 1h);
  if (c.reconnect_wait_max < c.reconnect_wait) t.fail("reconnect_wait_max", "must not be below reconnect_wait");
}

// Stream and consumer names become subject tokens of the JetStream API.
std::string read_jetstream_name(table_reader& t, const char* key, const std::string& fallback, const char* what) {
  std::string name = t.string(key, fallback);
  if (name.empty() || name.find_first_of(". *>") != std::string::npos)
    t.fail(key, std::string("a ") + what + " name must be non-empty and contain no '.', ' ', '*' or '>'");
  return name;
}

void read_stream(table_reader t, stream_config& c) {
  c.provision = t.boolean("provision", c.provision);
  c.name = read_jetstream_name(t, "name", c.name, "stream");
  c.subjects = t.string_list("subjects", c.subjects);
  if (c.provision && c.subjects.empty()) t.fail("subjects", "needs at least one subject when provision = true");
  c.replicas = t.integer("replicas", c.replicas, 1, 5);
  c.retention = t.choice("retention", c.retention, {"limits", "interest", "workqueue"});
  c.max_bytes = t.integer("max_bytes", c.max_bytes, -1, i64_max);
  c.max_age = t.duration("max_age", c.max_age, 0ms, 24h * 3650);
  c.republish_source = t.string("republish_source", c.republish_source);
  c.republish_destination = t.string("republish_destination", c.republish_destination);
  if (c.republish_source.empty() != c.republish_destination.empty())
    t.fail("republish_destination", "republish needs both republish_source and republish_destination");
}

void read_consumer(table_reader t, consumer_config& c) {
  c.provision = t.boolean("provision", c.provision);
  c.durable = read_jetstream_name(t, "durable", c.durable, "consumer");
  c.filter_subject = t.string("filter_subject", c.filter_subject);
  c.deliver_policy = t.choice("deliver_policy", c.deliver_policy, {"all", "new", "last"});
  c.ack_wait = t.duration("ack_wait", c.ack_wait, 1s, 12h);
  c.max_deliver = t.integer("max_deliver", c.max_deliver, -1, i64_max);
  if (c.max_deliver == 0) t.fail("max_deliver", "0 is not allowed: use -1 for unlimited or a positive count");
  c.max_ack_pending = t.integer("max_ack_pending", c.max_ack_pending, -1, 10'000'000);
  if (c.max_ack_pending == 0) t.fail("max_ack_pending", "0 is not allowed: use -1 for unlimited or a positive count");
  c.backoff = t.duration_list("backoff");
  if (!c.backoff.empty() && c.max_deliver != -1 && std::int64_t(c.backoff.size()) > c.max_deliver)
    t.fail("backoff", "has more steps than max_deliver allows (the server rejects this)");
  // The server uses backoff[0] as the ack wait when backoff is set; a different ack_wait would
  // make heartbeats too slow and every start report drift.
  if (!c.backoff.empty() && c.backoff.front() != c.ack_wait)
    t.fail("backoff", "backoff[0] must equal ack_wait (the server uses it as the ack wait)");
}

void read_backoff(table_reader t, backoff_config& c) {
  c.base = t.duration("base", c.base, 0ms, 24h);
  c.multiplier = t.number("multiplier", c.multiplier, 1.0, 100.0);
  c.ceiling = t.duration("ceiling", c.ceiling, 0ms, 7 * 24h);
  c.jitter = t.number("jitter", c.jitter, 0.0, 1.0);
  if (c.ceiling < c.base) t.fail("ceiling", "must not be below base");
}

// NATS subject matching: '*' matches one token, '>' the rest (at least one token).
bool subject_matches(std::string_view pattern, std::string_view subject) {
  if (subject.empty()) return false;
  auto next = [](std::string_view& s) {
    auto dot = s.find('.');
    std::string_view tok = s.substr(0, dot);
    s = dot == std::string_view::npos ? std::string_view{} : s.substr(dot + 1);
    return tok;
  };
  bool more_p = true, more_s = true;
  while (more_p && more_s) {
    more_p = pattern.find('.') != std::string_view::npos;
    more_s = subject.find('.') != std::string_view::npos;
    auto p = next(pattern), s = next(subject);
    if (p == ">") return true;
    if (p != "*" && p != s) return false;
  }
  return !more_p && !more_s;
}

void read_queue(table_reader t, queue_config& c) {
  c.dead_letter_subject = t.string("dead_letter_subject", c.dead_letter_subject);
  c.dead_letter_max_bytes = t.integer("dead_letter_max_bytes", c.dead_letter_max_bytes, -1, i64_max);
  c.dead_letter_max_age = t.duration("dead_letter_max_age", c.dead_letter_max_age, 0ms, 24h * 3650);
  c.ack_mode = t.enum_choice("ack_mode", c.ack_mode, {{"sync", ack_policy::sync}, {"async", ack_policy::async}});
  c.fetch_expires = t.duration("fetch_expires", c.fetch_expires, 100ms, 5min);
  c.max_fetch_batch = t.integer("max_fetch_batch", c.max_fetch_batch, 1, 10'000);
  read_stream(t.table("stream"), c.stream);
  for (const auto& subject : c.stream.subjects)
    if (subject_matches(subject, c.dead_letter_subject))
      t.fail("dead_letter_subject", "\"" + c.dead_letter_subject + "\" is captured by the stream's subject \"" +
                                        subject + "\": dead letters would come back as events");
  read_consumer(t.table("consumer"), c.consumer);
  read_backoff(t.table("nak_backoff"), c.nak_backoff);
}

// An http(s) URL without credentials in it: a store's keys have keys of their own, and a
// "user:secret@" would be taken for a host name and printed in every resolve error.
void check_http_url(table_reader& t, std::string_view key, const std::string& url) {
  if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0)
    t.fail(key, "must start with http:// or https://, got \"" + redact_userinfo(url) + "\"");
  else if (url.find('@') != std::string::npos)
    t.fail(key, "must not carry credentials (\"" + redact_userinfo(url) +
                    "\"): give them with the store's credential keys");
}

s3_store_config read_s3(table_reader& t) {
  s3_store_config c;
  c.endpoint = t.string("endpoint", c.endpoint);
  check_http_url(t, "endpoint", c.endpoint);
  c.region = t.string("region", c.region);
  bool keys_given = t.has("access_key_id") || t.has("access_key_id_env") || t.has("access_key_id_file");
  c.credentials = t.enum_choice("credentials", keys_given ? s3_credentials::static_keys : s3_credentials::chain,
                                {{"static", s3_credentials::static_keys},
                                 {"env", s3_credentials::env},
                                 {"profile", s3_credentials::profile},
                                 {"web_identity", s3_credentials::web_identity},
                                 {"container", s3_credentials::container},
                                 {"imds", s3_credentials::imds},
                                 {"chain", s3_credentials::chain}});
  bool static_keys = c.credentials == s3_credentials::static_keys;
  c.access_key_id = t.secret_value("access_key_id", static_keys);
  c.secret_access_key = t.secret_value("secret_access_key", static_keys);
  c.session_token = t.secret_value("session_token", false);
  if (!static_keys && (keys_given || !c.secret_access_key.empty() || !c.session_token.empty()))
    t.fail("credentials", "keys are set in the store, so credentials must be \"static\" (or remove the keys)");
  c.profile = t.string("profile", c.profile);
  c.sts_endpoint = t.string("sts_endpoint", c.sts_endpoint);
  if (!c.sts_endpoint.empty()) check_http_url(t, "sts_endpoint", c.sts_endpoint);
  c.path_style = t.boolean("path_style", c.path_style);
  c.payload_signing = t.enum_choice("payload_signing", c.payload_signing,
                                    {{"auto", payload_signing_mode::automatic},
                                     {"unsigned", payload_signing_mode::unsigned_payload},
                                     {"signed", payload_signing_mode::signed_payload}});
  c.ca_file = t.string("ca_file", c.ca_file);
  c.verify_tls = t.boolean("verify_tls", c.verify_tls);
  c.max_connections = t.integer("max_connections", c.max_connections, 1, 4096);
  c.parts_per_get = t.integer("parts_per_get", c.parts_per_get, 1, 256);
  c.connect_timeout = t.duration("connect_timeout", c.connect_timeout, 100ms, 5min);
  c.request_timeout = t.duration("request_timeout", c.request_timeout, 1s, 1h);
  return c;
}

gcs_store_config read_gcs(table_reader& t) {
  gcs_store_config c;
  c.endpoint = t.string("endpoint", c.endpoint);
  check_http_url(t, "endpoint", c.endpoint);
  c.credentials = t.enum_choice("credentials", c.credentials,
                                {{"service_account", gcs_credentials::service_account},
                                 {"metadata", gcs_credentials::metadata},
                                 {"token", gcs_credentials::token}});
  c.service_account_file = t.string("service_account_file", c.service_account_file);
  c.token = t.secret_value("token", c.credentials == gcs_credentials::token);
  if (c.credentials == gcs_credentials::service_account && c.service_account_file.empty())
    t.fail("service_account_file", "is required when credentials = \"service_account\"");
  c.ca_file = t.string("ca_file", c.ca_file);
  c.verify_tls = t.boolean("verify_tls", c.verify_tls);
  c.max_connections = t.integer("max_connections", c.max_connections, 1, 4096);
  c.request_timeout = t.duration("request_timeout", c.request_timeout, 1s, 1h);
  return c;
}

// Permission bits as an octal string ("0640"), the way chmod and Kubernetes write them.
unsigned read_mode(table_reader& t, const char* key, unsigned fallback) {
  char dflt[8];
  std::snprintf(dflt, sizeof dflt, "0%o", fallback);
  std::string text = t.string(key, dflt);
  unsigned value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value, 8);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value > 0777) {
    t.fail(key, "\"" + text + "\" is not an octal permission mode such as \"0600\"");
    return fallback;
  }
  return value;
}

fs_store_config read_fs(table_reader& t) {
  fs_store_config c;
  c.root = t.string("root", c.root);
  if (c.root.empty() || c.root.front() != '/') t.fail("root", "must be an absolute directory path");
  c.fsync = t.boolean("fsync", c.fsync);
  c.file_mode = read_mode(t, "file_mode", c.file_mode);
  c.dir_mode = read_mode(t, "dir_mode", c.dir_mode);
  return c;
}

// The fleet-wide budgets any store may carry (see fleet/budget_book.hpp).
store_budget read_budget(table_reader& t, bool sends_requests) {
  store_budget b;
  if (t.has("max_bandwidth")) {
    auto parsed = parse_bandwidth_schedule(t.string_or_integer("max_bandwidth", "off"));
    if (auto* schedule = std::get_if<bandwidth_schedule>(&parsed)) b.bandwidth = std::move(*schedule);
    else t.fail("max_bandwidth", std::get<std::string>(parsed));
  }
  if (t.has("max_requests_per_second")) {
    if (!sends_requests) t.fail("max_requests_per_second", "an fs store sends no requests; use max_bandwidth or max_transfers");
    b.requests_per_second = t.number("max_requests_per_second", 0, 0.01, 1e6);
  }
  b.transfers = t.integer("max_transfers", 0, 0, 65536);
  return b;
}

void read_stores(table_reader t, std::map<std::string, store_config>& stores, std::map<std::string, store_budget>& budgets) {
  for (const auto& name : t.child_names()) {
    table_reader s = t.table(name);
    std::string type = s.choice("type", "s3", {"s3", "gcs", "fs"});
    if (!s.has("type")) s.fail("type", "is required (s3, gcs or fs)");
    if (type == "s3") stores.emplace(name, read_s3(s));
    else if (type == "gcs") stores.emplace(name, read_gcs(s));
    else stores.emplace(name, read_fs(s));
    budgets.emplace(name, read_budget(s, type != "fs"));
  }
}

// Compiled again (with JIT) by the router; here only to reject a bad pattern at load time.
void check_patterns(table_reader& t, const char* key, const std::vector<std::string>& patterns) {
  for (std::size_t i = 0; i < patterns.size(); ++i) {
    int code = 0;
    PCRE2_SIZE offset = 0;
    pcre2_code* re = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(patterns[i].c_str()), patterns[i].size(), PCRE2_UTF,
                                   &code, &offset, nullptr);
    if (re) {
      pcre2_code_free(re);
      continue;
    }
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(code, msg, sizeof msg);
    t.fail(key, "pattern " + std::to_string(i + 1) + " \"" + patterns[i] + "\" is invalid at offset " +
                    std::to_string(offset) + ": " + reinterpret_cast<const char*>(msg));
  }
}

// A destination's storage class, encryption and ACL: only what its kind of store has.
void read_write_options(table_reader& t, const store_config* store, write_options& w) {
  w.storage_class = t.string("storage_class", w.storage_class);
  w.server_side_encryption = t.string("server_side_encryption", w.server_side_encryption);
  w.sse_kms_key_id = t.string("sse_kms_key_id", w.sse_kms_key_id);
  w.kms_key_name = t.string("kms_key_name", w.kms_key_name);
  w.acl = t.string("acl", w.acl);
  const bool s3 = store && std::holds_alternative<s3_store_config>(*store);
  const bool gcs = store && std::holds_alternative<gcs_store_config>(*store);
  w.copy_object_lock = t.enum_choice("object_lock", s3, {{"copy", true}, {"ignore", false}});
  w.copy_tags = t.enum_choice("tags", true, {{"copy", true}, {"ignore", false}});
  if (!store) return;
  if (w.copy_object_lock && !s3) t.fail("object_lock", "\"copy\" applies to s3 destinations only");
  auto only = [&t](bool allowed, const std::string& value, const char* key, const char* which) {
    if (!allowed && !value.empty()) t.fail(key, std::string("applies to ") + which + " destinations only");
  };
  only(s3 || gcs, w.storage_class, "storage_class", "s3 and gcs");
  only(s3, w.server_side_encryption, "server_side_encryption", "s3");
  only(s3, w.sse_kms_key_id, "sse_kms_key_id", "s3");
  only(s3, w.acl, "acl", "s3");
  only(gcs, w.kms_key_name, "kms_key_name", "gcs");
  if (!w.server_side_encryption.empty() && w.server_side_encryption != "AES256" && w.server_side_encryption != "aws:kms")
    t.fail("server_side_encryption", "must be \"AES256\" or \"aws:kms\", not \"" + w.server_side_encryption + "\"");
  if (!w.sse_kms_key_id.empty() && w.server_side_encryption != "aws:kms")
    t.fail("sse_kms_key_id", "needs server_side_encryption = \"aws:kms\"");
  static const char* const canned[] = {"private", "public-read", "public-read-write", "authenticated-read",
                                       "aws-exec-read", "bucket-owner-read", "bucket-owner-full-control"};
  if (!w.acl.empty() && std::find(std::begin(canned), std::end(canned), w.acl) == std::end(canned))
    t.fail("acl", "\"" + w.acl + "\" is not a canned ACL (private, public-read, public-read-write, authenticated-read, "
                  "aws-exec-read, bucket-owner-read, bucket-owner-full-control)");
}

route_endpoint read_route_endpoint(table_reader t, const std::map<std::string, store_config>& stores, bool source) {
  route_endpoint e;
  e.store = t.string("store", e.store);
  if (e.store.empty()) t.fail("store", "is required (the name of a [stores.NAME] table)");
  else if (!stores.count(e.store)) t.fail("store", "no store named \"" + e.store + "\" is defined under [stores]");
  else if (source && !std::holds_alternative<s3_store_config>(stores.at(e.store)))
    t.fail("store", "a route source must be an s3 store (events come from MinIO/S3)");
  e.bucket = t.string("bucket", e.bucket);
  if (e.bucket.empty()) t.fail("bucket", "is required");
  e.prefix = t.string("prefix", e.prefix);
  if (!source) {
    e.deletes = t.enum_choice("deletes", e.deletes,
                              {{"propagate", deletes_policy::propagate}, {"ignore", deletes_policy::ignore}});
    e.versions = t.enum_choice("versions", e.versions, {{"current", versions_policy::current}, {"all", versions_policy::all}});
    if (e.versions == versions_policy::all && stores.count(e.store) &&
        std::holds_alternative<fs_store_config>(stores.at(e.store)))
      t.fail("versions", "\"all\" needs an s3 or gcs destination (a bucket with versioning on); fs destinations "
                         "hold the current version only");
    read_write_options(t, stores.count(e.store) ? &stores.at(e.store) : nullptr, e.write);
  }
  return e;
}

// A key-value bucket name: letters, digits, '-' and '_'; the default is made of those.
std::string read_bucket_name(table_reader& t, const char* key, std::string fallback) {
  for (auto& ch : fallback)
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '-' && ch != '_') ch = '_';
  std::string name = t.string(key, fallback);
  if (name.empty() || !std::all_of(name.begin(), name.end(), [](char ch) {
        return std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_';
      }))
    t.fail(key, "must be letters, digits, '-' and '_' (a JetStream key-value bucket name)");
  return name;
}

void read_fleet(table_reader t, fleet_config& f, const std::string& durable) {
  f.registry_bucket = read_bucket_name(t, "registry_bucket", "archie-fleet-" + durable);
  f.runs_bucket = read_bucket_name(t, "runs_bucket", "archie-runs-" + durable);
  f.heartbeat = t.duration("heartbeat", f.heartbeat, 1s, 10min);
  f.ttl = t.duration("ttl", f.ttl, 3s, 1h);
  if (f.ttl < 2 * f.heartbeat)
    t.fail("ttl", "must be at least twice fleet.heartbeat, or a live worker would vanish between heartbeats");
}

void read_routes(table_reader& top, config& c) {
  for (auto& r : top.array_of_tables("route")) {
    route_config rc;
    rc.source = read_route_endpoint(r.table("source"), c.stores, true);
    for (auto& d : r.array_of_tables("destinations")) rc.destinations.push_back(read_route_endpoint(std::move(d), c.stores, false));
    if (rc.destinations.empty()) r.fail("destinations", "needs at least one destination ([[route.destinations]])");
    rc.exclude_copy = r.string_list("exclude_copy", {});
    rc.exclude_remove = r.string_list("exclude_remove", {});
    check_patterns(r, "exclude_copy", rc.exclude_copy);
    check_patterns(r, "exclude_remove", rc.exclude_remove);
    c.routes.push_back(std::move(rc));
  }
}

void read_replication(table_reader t, replication_config& c) {
  // S3 requires parts of at least 5 MiB (except the last) and allows at most 10,000 parts.
  c.part_size_mib = t.integer("part_size_mib", c.part_size_mib, 5, 5 * 1024);
  c.buffer_budget_mib = t.integer("buffer_budget_mib", c.buffer_budget_mib, 5, 1024 * 1024);
  if (c.buffer_budget_mib < c.part_size_mib)
    t.fail("buffer_budget_mib", "must hold at least one part (part_size_mib = " + std::to_string(c.part_size_mib) + ")");
  c.parts_in_flight = t.integer("parts_in_flight", c.parts_in_flight, 1, 256);
  c.metadata_events = t.enum_choice("metadata_events", c.metadata_events,
                                    {{"copy", metadata_events_policy::copy}, {"skip", metadata_events_policy::skip}});
  c.unrouted_events = t.enum_choice("unrouted_events", c.unrouted_events,
                                    {{"skip", unrouted_policy::skip}, {"term", unrouted_policy::term}});
  c.ignore_lifecycle_expiry = t.boolean("ignore_lifecycle_expiry", c.ignore_lifecycle_expiry);
  c.delete_not_found = t.enum_choice("delete_not_found", c.delete_not_found,
                                     {{"done", delete_not_found_policy::done}, {"retry", delete_not_found_policy::retry}});
  c.max_retries = t.integer("max_retries", c.max_retries, 1, 1'000'000);
  c.wait_for_matching_etag = t.boolean("wait_for_matching_etag", c.wait_for_matching_etag);
  c.max_records_per_message = t.integer("max_records_per_message", c.max_records_per_message, 1, 100'000);
}

}  // namespace

config_error::config_error(std::string source, std::vector<problem> problems)
    : std::runtime_error("invalid configuration in " + source), source_(std::move(source)), problems_(std::move(problems)) {}

std::string describe(const config_error& e) {
  std::string out;
  for (const auto& p : e.problems()) {
    out += e.source();
    if (p.line > 0) out += ":" + std::to_string(p.line);
    out += ": " + p.path + ": " + p.reason + "\n";
  }
  if (out.empty()) out = std::string(e.what()) + "\n";
  return out;
}

loaded_config parse(std::string_view toml_text, std::string source_name) {
  toml::table root;
  try {
    root = toml::parse(toml_text, source_name);
  } catch (const toml::parse_error& err) {
    throw config_error(source_name, {{"(syntax)", std::string(err.description()), static_cast<int>(err.source().begin.line)}});
  }

  detail::read_context ctx;
  toml::table effective;
  loaded_config out;
  config& c = out.cfg;
  {
    table_reader top(&root, "", ctx, &effective);
    {
      table_reader log_table = top.table("log");
      std::string level = log_table.choice("level", "info", {"trace", "debug", "info", "warn", "error"});
      c.log_level = log::parse_level(level).value_or(log::level::info);
      std::string format = log_table.choice("format", "json", {"json", "text"});
      c.log_format = log::parse_format(format).value_or(log::format::json);
    }
    {
      table_reader http = top.table("http");
      c.http.address = http.string("address", c.http.address);
      c.http.port = static_cast<std::uint16_t>(http.integer("port", c.http.port, 0, 65535));
    }
    {
      table_reader worker = top.table("worker");
      c.worker.concurrency = worker.integer("concurrency", c.worker.concurrency, 1, 4096);
      c.worker.shutdown_wait = worker.duration("shutdown_wait", c.worker.shutdown_wait, 0ms, 1h);
      c.worker.message_timeout = worker.duration("message_timeout", c.worker.message_timeout, 1s, 7 * 24h);
    }
    read_nats(top.table("nats"), c.queue.nats);
    read_queue(top.table("queue"), c.queue);
    read_fleet(top.table("fleet"), c.fleet, c.queue.consumer.durable);
    read_stores(top.table("stores"), c.stores, c.budgets);
    read_replication(top.table("replication"), c.replication);
    read_routes(top, c);
  }
  if (ctx.problems.empty())
    for (auto& p : find_route_overlaps(c)) ctx.problems.push_back(std::move(p));
  if (!ctx.problems.empty()) throw config_error(std::move(source_name), std::move(ctx.problems));

  std::ostringstream os;
  // Relaxed precision: floats as an operator writes them (0.2, not 0.20000000000000001).
  os << toml::toml_formatter(effective, toml::toml_formatter::default_flags | toml::format_flags::relaxed_float_precision)
     << "\n";
  out.effective_toml = os.str();
  return out;
}

loaded_config load_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw config_error(path, {{"(file)", "cannot open config file: " + std::string(std::strerror(errno)), 0}});
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return parse(text, path);
}

}  // namespace archie::config
