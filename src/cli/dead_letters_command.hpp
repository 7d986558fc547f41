#pragma once
// `archie dead-letters list|replay|purge`: the dead-letter stream for operators.
#include "cli/command_line.hpp"
#include "config/config.hpp"

namespace archie::cli {

/// Exit code: 0 done, 1 a NATS request failed, 2 usage (bad filter, no dead-letter subject).
int run_dead_letters(const config::config& cfg, const command_options& opts);

}  // namespace archie::cli
