#pragma once
// archie's exit codes, one table for every subcommand (--help and CONFIGURE.md list them).
namespace archie::service {

inline constexpr int exit_ok = 0;
/// run: a runtime failure; verify: differences found; backfill, dead-letters: some failed.
inline constexpr int exit_failed = 1;
inline constexpr int exit_usage = 2;
inline constexpr int exit_bad_config = 3;
/// verify: a store could not be listed or read, so the comparison is incomplete.
inline constexpr int exit_incomplete = 4;
/// Ctrl-C (SIGINT) stopped a walk; 128 + SIGINT, as shells report it.
inline constexpr int exit_interrupted = 130;

}  // namespace archie::service
