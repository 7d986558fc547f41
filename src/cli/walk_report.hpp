#pragma once
// The parts of verify's and backfill's reports that describe the walk: per route, per
// destination counts, as text or JSON, and how far an interrupted walk got.
#include "cli/walk_runner.hpp"
#include "queue/nats_connection.hpp"

#include <boost/json/array.hpp>

#include <string>

namespace archie::cli {

/// [{route, source, source_listed, compared, finished, last_key, destinations: [{destination,
/// listed, equal, missing, extra, different, excluded, marker_reads}]}]
boost::json::array routes_json(const config::config& cfg, const walk_outcome& out);
/// One line per route and one per destination with its counts, on stdout.
void print_route_summaries(const config::config& cfg, const walk_outcome& out);
/// "12.34 s".
std::string seconds_text(double seconds);
/// "interrupted after N keys (last key: K)".
std::string interruption_text(const walk_outcome& out);

/// Records one summary per walked route in fleet.runs_bucket, for `archie status`: `command`
/// ("verify", "backfill") and its one-line `result`. Uses `nats` when the command has a
/// connection, else connects; a NATS that cannot be reached is a warning on stderr, never a
/// failure of the command.
void record_runs(const config::config& cfg, const walk_outcome& out, const std::string& command,
                 const std::string& result, queue::nats_connection* nats = nullptr);

}  // namespace archie::cli
