#pragma once
// The last `archie verify` and `archie backfill` of each route, as `archie status` shows them:
// one entry per command and route ("verify.route-1") in a JetStream key-value bucket
// (fleet.runs_bucket) that, unlike the worker registry, has no TTL, so a weekly verify is
// still there on Friday. Numbers and labels only (route and store:bucket names), no errors.
#include <nats/nats.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace archie::fleet {

struct run_summary {
  std::string command;  ///< "verify" or "backfill"
  std::int64_t route = 0;  ///< 1-based, as the commands number routes
  std::string source;      ///< the route's label ("minio:media/")
  std::int64_t finished_unix = 0;
  double elapsed_seconds = 0;
  bool complete = true;  ///< false: interrupted, or stopped by a store failure
  std::uint64_t compared = 0;
  std::uint64_t missing = 0, different = 0, extra = 0;  ///< over the route's destinations
  std::string result;  ///< the command's own one-line verdict ("3 differences", "12 copies, ...")
  std::string host;
};

std::string to_json(const run_summary& s);
/// nullopt when `text` is not a summary.
std::optional<run_summary> run_summary_from_json(std::string_view text);
/// The key of a summary: "<command>.route-<n>".
std::string run_key(const run_summary& s);

/// Writes each summary under its key, creating the bucket (file storage, one value per key,
/// no TTL) when missing. Blocking; throws nats_error.
void record_runs(jsCtx* js, const std::string& bucket, const std::vector<run_summary>& runs);
/// Every summary in the bucket, by route then command; empty when there is no bucket.
/// Blocking; throws nats_error.
std::vector<run_summary> read_runs(jsCtx* js, const std::string& bucket);

}  // namespace archie::fleet
