#pragma once
// archie's whole configuration, loaded from one TOML file. CONFIGURE.md documents every key;
// keep the two in step.
#include "config/config_error.hpp"
#include "async/backoff_policy.hpp"
#include "config/bandwidth_schedule.hpp"
#include "config/secret.hpp"
#include "log/logger.hpp"

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

namespace archie::config {

using std::chrono::milliseconds;

// Closed choices, parsed from their TOML names once at load: a typo is a config error, never
// a comparison that silently fails where the value is used.
enum class ack_policy { sync, async };
enum class payload_signing_mode { automatic, unsigned_payload, signed_payload };  ///< auto | unsigned | signed
enum class gcs_credentials { service_account, metadata, token };
/// Where an S3 store's keys come from (CONFIGURE.md, "S3 credentials"); chain tries env,
/// web_identity, profile, container, imds in that order, as the AWS SDKs do.
enum class s3_credentials { static_keys, env, profile, web_identity, container, imds, chain };
enum class metadata_events_policy { copy, skip };
enum class unrouted_policy { skip, term };
enum class delete_not_found_policy { done, retry };
/// What a source delete does at one destination: remove the copy, or keep it (a backup).
enum class deletes_policy { propagate, ignore };
/// Which versions of a source object one destination holds: the current one (a mirror), or
/// every version in the source's order, delete markers included (a versioned S3 bucket).
enum class versions_policy { current, all };

struct http_config {
  std::string address = "0.0.0.0";  ///< Kubernetes probes come from the node, not loopback.
  std::uint16_t port = 9090;         ///< 0 picks a free port (tests).
};

struct tls_config {
  bool enabled = false;
  bool verify = true;
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
};

struct nats_config {
  std::vector<std::string> urls{"nats://127.0.0.1:4222"};
  std::string name = "archie";
  std::string user;
  secret password;
  secret token;
  std::string creds_file;
  std::string nkey_seed_file;
  tls_config tls;
  milliseconds connect_timeout{5000};
  milliseconds reconnect_wait{1000};
  milliseconds reconnect_wait_max{30000};
};

struct stream_config {
  bool provision = true;
  std::string name = "minio-events";
  std::vector<std::string> subjects{"minio.events"};
  std::int64_t replicas = 1;
  std::string retention = "workqueue";  ///< limits | interest | workqueue
  std::int64_t max_bytes = -1;
  milliseconds max_age{0};
  std::string republish_source;
  std::string republish_destination;
};

struct consumer_config {
  bool provision = true;
  std::string durable = "archie";
  std::string filter_subject;
  std::string deliver_policy = "all";  ///< all | new | last
  milliseconds ack_wait{60000};
  std::int64_t max_deliver = -1;  ///< -1: unlimited; exhausted retries are ended by `term`, not dropped.
  std::int64_t max_ack_pending = 1000;
  std::vector<milliseconds> backoff;
};

using backoff_config = async::backoff_policy;

struct queue_config {
  nats_config nats;
  stream_config stream;
  consumer_config consumer;
  backoff_config nak_backoff;
  std::string dead_letter_subject;  ///< empty: terminated messages are not republished
  /// Limits of the provisioned dead-letter stream (oldest dropped first): dead letters are for
  /// people to read, and an unbounded stream would eventually fill the JetStream server.
  std::int64_t dead_letter_max_bytes = 1ll << 30;
  milliseconds dead_letter_max_age{30ll * 24 * 3600 * 1000};
  ack_policy ack_mode = ack_policy::sync;  ///< sync: wait for the server to confirm each ack
  milliseconds fetch_expires{5000};
  std::int64_t max_fetch_batch = 256;
};

struct s3_store_config {
  std::string endpoint;
  std::string region = "us-east-1";
  secret access_key_id;
  secret secret_access_key;
  secret session_token;
  /// Default: static_keys when access_key_id is given, else chain.
  s3_credentials credentials = s3_credentials::static_keys;
  std::string profile;       ///< empty: AWS_PROFILE, else "default"
  std::string sts_endpoint;  ///< empty: AWS_ENDPOINT_URL_STS, else https://sts.REGION.amazonaws.com
  bool path_style = true;
  payload_signing_mode payload_signing = payload_signing_mode::automatic;
  std::string ca_file;
  bool verify_tls = true;
  std::int64_t max_connections = 64;
  /// As a source: how many parts one GET may bring (1: a ranged GET per part).
  std::int64_t parts_per_get = 1;
  milliseconds connect_timeout{5000};
  milliseconds request_timeout{60000};
};

struct gcs_store_config {
  std::string endpoint = "https://storage.googleapis.com";
  gcs_credentials credentials = gcs_credentials::service_account;
  std::string service_account_file;
  secret token;
  std::string ca_file;
  bool verify_tls = true;
  std::int64_t max_connections = 64;
  milliseconds request_timeout{60000};
};

struct fs_store_config {
  std::string root;
  bool fsync = true;
  unsigned file_mode = 0600;  ///< replicas are private by default: the source's ACLs do not travel
  unsigned dir_mode = 0700;
};

using store_config = std::variant<s3_store_config, gcs_store_config, fs_store_config>;

/// What the whole fleet may send to one store ([stores.NAME] max_*): each `archie run` takes
/// its share (fleet/budget_book.hpp). Unset budgets cost nothing.
struct store_budget {
  bandwidth_schedule bandwidth;       ///< request body bytes per second (fs: bytes written)
  double requests_per_second = 0;     ///< requests sent, retries included; 0: no limit
  std::int64_t transfers = 0;         ///< records worked on at once with this store as a destination; 0: no limit
  bool any() const { return bandwidth.limits() || requests_per_second > 0 || transfers > 0; }
};

/// How a destination writes objects, beyond their bytes and metadata (destinations only).
struct write_options {
  std::string storage_class;           ///< S3 x-amz-storage-class, GCS storageClass; empty: the bucket's default
  std::string server_side_encryption;  ///< S3: "AES256" or "aws:kms"; empty: the bucket's default
  std::string sse_kms_key_id;          ///< S3, with aws:kms: the key; empty: the account's default key
  std::string kms_key_name;            ///< GCS: a Cloud KMS key (projects/.../cryptoKeys/...)
  std::string acl;                     ///< S3 canned ACL, e.g. "bucket-owner-full-control"
  /// object_lock = "copy": the source's retention and legal hold are written (S3 only, the
  /// default there); "ignore": never (the default for GCS and directories).
  bool copy_object_lock = false;
  /// tags = "copy" (the default): the source's tags are written; "ignore": never (a
  /// destination without tagging, or without the s3:PutObjectTagging permission).
  bool copy_tags = true;
};

struct route_endpoint {
  std::string store;
  std::string bucket;
  std::string prefix;  ///< source: only keys under it; destination: replaces the source prefix
  deletes_policy deletes = deletes_policy::propagate;  ///< destinations only
  versions_policy versions = versions_policy::current;  ///< destinations only
  write_options write{};                               ///< destinations only
};

struct route_config {
  route_endpoint source;
  std::vector<route_endpoint> destinations;
  std::vector<std::string> exclude_copy;    ///< PCRE2 patterns; matching keys are not copied
  std::vector<std::string> exclude_remove;  ///< PCRE2 patterns; matching keys are not removed
};

struct replication_config {
  std::int64_t part_size_mib = 16;       ///< multipart part size and small-object threshold
  std::int64_t buffer_budget_mib = 256;  ///< all part buffers together: bounds memory per worker
  std::int64_t parts_in_flight = 8;      ///< per object: parallel ranged GETs / part uploads
  metadata_events_policy metadata_events = metadata_events_policy::copy;  ///< PutTagging & co.
  unrouted_policy unrouted_events = unrouted_policy::skip;  ///< buckets no route covers
  bool ignore_lifecycle_expiry = true;
  delete_not_found_policy delete_not_found = delete_not_found_policy::done;  ///< retry: the original archie
  std::int64_t max_retries = 5;          ///< deliveries before a missing source counts as superseded
  bool wait_for_matching_etag = false;
  /// A message with more records is refused (term): one message must not fan out into
  /// thousands of copies that a single nak would all redo.
  std::int64_t max_records_per_message = 1000;
};

struct worker_config {
  std::int64_t concurrency = 16;  ///< the one knob: transfers in flight per worker
  milliseconds shutdown_wait{30000};
  milliseconds message_timeout{3600000};  ///< a stuck transfer is cancelled and nak'ed after this
};

/// The worker registry (archie status): a JetStream key-value bucket where each `run` keeps
/// an entry that expires `ttl` after its last heartbeat.
struct fleet_config {
  std::string registry_bucket;  ///< default "archie-fleet-<consumer durable>"
  /// The last verify / backfill of each route (no TTL); default "archie-runs-<consumer durable>".
  std::string runs_bucket;
  milliseconds heartbeat{5000};
  milliseconds ttl{15000};
};

struct config {
  log::level log_level = log::level::info;
  log::format log_format = log::format::json;
  http_config http;
  worker_config worker;
  fleet_config fleet;
  queue_config queue;
  std::map<std::string, store_config> stores;
  std::map<std::string, store_budget> budgets;  ///< by store name; every store has one (maybe empty)
  replication_config replication;
  std::vector<route_config> routes;
};

struct loaded_config {
  config cfg;
  std::string effective_toml;  ///< every key with its effective value, secrets redacted
};

/// Parses and validates TOML text; throws config_error listing every problem found.
loaded_config parse(std::string_view toml_text, std::string source_name);
/// Reads and parses a file; a missing or unreadable file is a config_error too.
loaded_config load_file(const std::string& path);
/// "file:line: path: reason" lines, one per problem.
std::string describe(const config_error& e);

}  // namespace archie::config
