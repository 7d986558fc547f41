#pragma once
// Path resolution under a destination root that never follows a symlink below the root: a
// symlink planted inside the replica (by a user, or by a key such as "a" -> "/etc") must not
// redirect writes or deletes outside it. Each component is opened relative to its parent
// directory's fd with O_NOFOLLOW, so there is no window between checking and using a path.
// Blocking calls: run them on the blocking pool.
#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

namespace archie::store::fs {

/// An owned file descriptor (-1: none).
class unique_fd {
 public:
  unique_fd() = default;
  explicit unique_fd(int fd) : fd_(fd) {}
  unique_fd(unique_fd&& o) noexcept : fd_(o.release()) {}
  unique_fd& operator=(unique_fd&& o) noexcept;
  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;
  ~unique_fd();
  int get() const { return fd_; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  explicit operator bool() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

/// The open directories from the root down to the parent of the last component.
struct directory_chain {
  std::vector<unique_fd> dirs;          ///< dirs[0] is the root; dirs.back() holds `leaf`
  std::vector<std::string> components;  ///< the relative path split at '/'
  const std::string& leaf() const { return components.back(); }
  int parent() const { return dirs.back().get(); }
};

/// Opens root/relative's parent directories without following symlinks below the root.
/// With `create`, missing directories are made with `dir_mode`. Returns 0 or an errno
/// (ELOOP or ENOTDIR when a component is a symlink or a file).
int open_chain(const std::string& root, std::string_view relative, bool create, mode_t dir_mode, directory_chain& out);

/// After the leaf is gone: removes the directories that became empty, deepest first, but
/// never the first `keep` components (the bucket directory). Stops at the first non-empty one.
void prune_empty_directories(directory_chain& chain, std::size_t keep);

/// Where archie keeps the files it is writing: a directory at the root, beside the bucket
/// directories, which no key can name (a key lives inside its bucket's directory, and no
/// bucket may take this name). Copies are unnamed files (O_TMPFILE) that pass through here
/// only for the instant of their atomic move into place; where the filesystem has no
/// O_TMPFILE, the partial copies themselves live here.
inline constexpr const char* staging_directory = ".archie-staging";

/// Removes staging files older than `min_age_seconds` (a killed worker's partial copies on a
/// filesystem without O_TMPFILE). Nothing outside the staging directory is ever touched.
/// Returns how many were removed.
std::size_t sweep_staging(const std::string& root, long min_age_seconds);

}  // namespace archie::store::fs
