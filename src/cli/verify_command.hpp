#pragma once
// `archie verify`: compare routes' sources with their destinations and report what differs.
#include "cli/command_line.hpp"
#include "config/config.hpp"

namespace archie::cli {

/// Exit code: 0 all equal, 1 differences or a store failure, 2 usage, 130 interrupted.
int run_verify(const config::config& cfg, const command_options& opts);

}  // namespace archie::cli
