#pragma once
// `archie backfill`: walks routes like verify and repairs what differs, by publishing
// synthetic MinIO events for the worker fleet (default) or in-process through the same
// engine as `run` (--direct).
#include "cli/command_line.hpp"
#include "config/config.hpp"

namespace archie::cli {

/// Exit code: 0 every repair done or published (or none needed), 1 a repair or the walk
/// failed, 2 usage, 130 interrupted.
int run_backfill(const config::config& cfg, const command_options& opts);

}  // namespace archie::cli
