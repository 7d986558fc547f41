#pragma once
// credential_process in an AWS profile: a command that prints credentials as JSON on stdout
// (the AWS CLI's format: {"Version": 1, "AccessKeyId", "SecretAccessKey", "SessionToken",
// "Expiration"}). It is run directly, never through a shell (the image has none): the
// command line is split into words as a POSIX shell would split it, quotes and backslashes
// included, and nothing else (no variables, globs or pipes). Blocking: run it off the
// event loop.
#include "store/s3/credentials/aws_credentials.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace archie::store::s3 {

/// The words of a command line; nullopt when a quote is left open.
std::optional<std::vector<std::string>> split_command_line(std::string_view command);

struct process_output {
  bool ran = false;       ///< it started and ended (exit_code is meaningful)
  int exit_code = -1;
  std::string out;        ///< stdout, at most max_output bytes
  std::string problem;    ///< why it did not run or was stopped (never its output)
};

/// Runs argv[0] (looked up on PATH) with argv, stdin from /dev/null, stderr inherited (the
/// process's own messages reach the worker's log stream), stdout captured. Killed after
/// `timeout`.
process_output run_process(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                           std::size_t max_output = 64 * 1024);

/// The JSON a credential_process prints. Version must be 1; SessionToken and Expiration are
/// optional (long-lived keys).
credentials_answer parse_credential_process_output(std::string_view json);

}  // namespace archie::store::s3
