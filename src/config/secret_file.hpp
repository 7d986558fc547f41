#pragma once
// A secret kept in a mounted file and re-read when the file changes. Kubernetes updates a
// mounted Secret by writing a new timestamped directory and swapping the `..data` symlink,
// so the path stays the same while the file behind it is replaced: watching the resolved
// file's identity (device, inode, size, mtime) catches that and an in-place rewrite alike.
// A new value that cannot be read or is empty is reported (log line and
// archie_secret_reload_failures_total) and the previous value stays in use.
#include "config/secret.hpp"

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>

namespace archie::config {

/// The value of a secret file: its text without trailing newlines ("" when unreadable or
/// empty, with `error` saying why, naming the path but never the content).
std::string read_secret_file(const std::string& path, std::string& error);

/// Identity of the file a path resolves to (symlinks followed); nullopt when it cannot be
/// stat'ed. Two different identities mean the content may have changed.
struct file_identity {
  std::uint64_t device = 0;
  std::uint64_t inode = 0;
  std::int64_t size = 0;
  std::int64_t mtime_ns = 0;
  std::int64_t ctime_ns = 0;
  bool operator==(const file_identity&) const = default;
};
std::optional<file_identity> identify_file(const std::string& path);

/// Holds a secret and re-reads its file on request. The owner decides how often to check
/// (every few seconds is plenty: the kubelet itself syncs Secrets about once a minute).
class secret_file_watch {
 public:
  /// Starts from `initial` (already read at config load). With no file path the secret is
  /// fixed and check_now() never changes it.
  explicit secret_file_watch(secret initial);

  /// The current value. Safe from any thread.
  secret value() const;
  /// True when the secret comes from a file that may change.
  bool watched() const { return !path_.empty(); }
  /// Looks at the file; when it changed and its new content is good, switches to it.
  /// Returns true when the value changed.
  bool check_now();
  /// Changes applied since start (tests and logs).
  std::uint64_t reloads() const;

 private:
  mutable std::mutex mutex_;
  const std::string path_;
  secret value_;
  std::optional<file_identity> seen_;
  std::optional<file_identity> refused_;  ///< a bad version already reported once
  std::uint64_t reloads_ = 0;
};

}  // namespace archie::config
