#include "store/fs/beneath.hpp"

#include <fcntl.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

namespace archie::store::fs {

unique_fd& unique_fd::operator=(unique_fd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.release();
  }
  return *this;
}

unique_fd::~unique_fd() {
  if (fd_ >= 0) ::close(fd_);
}

int open_chain(const std::string& root, std::string_view relative, bool create, mode_t dir_mode, directory_chain& out) {
  out = {};
  std::size_t pos = 0;
  while (pos <= relative.size()) {
    auto slash = relative.find('/', pos);
    out.components.emplace_back(relative.substr(pos, slash == std::string_view::npos ? std::string_view::npos : slash - pos));
    if (slash == std::string_view::npos) break;
    pos = slash + 1;
  }
  // The root itself may be a symlink: that is the operator's choice, not a key's.
  unique_fd dir(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir) return errno;
  out.dirs.push_back(std::move(dir));
  for (std::size_t i = 0; i + 1 < out.components.size(); ++i) {
    const char* name = out.components[i].c_str();
    int parent = out.dirs.back().get();
    int fd = ::openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT && create) {
      if (::mkdirat(parent, name, dir_mode) != 0 && errno != EEXIST) return errno;
      fd = ::openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (fd < 0) return errno;
    out.dirs.emplace_back(fd);
  }
  return 0;
}

void prune_empty_directories(directory_chain& chain, std::size_t keep) {
  // dirs[0] is the root; dirs[i] (i >= 1) is the directory components[i - 1], inside dirs[i - 1].
  for (std::size_t i = chain.dirs.size() - 1; i > keep; --i) {
    chain.dirs[i] = unique_fd();  // close before removing
    if (::unlinkat(chain.dirs[i - 1].get(), chain.components[i - 1].c_str(), AT_REMOVEDIR) != 0) break;
  }
}

std::size_t sweep_staging(const std::string& root, long min_age_seconds) {
  std::string dir_path = root + "/" + staging_directory;
  unique_fd dir(::open(dir_path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!dir) return 0;
  int listing_fd = ::dup(dir.get());
  if (listing_fd < 0) return 0;
  DIR* listing = ::fdopendir(listing_fd);
  if (!listing) {
    ::close(listing_fd);
    return 0;
  }
  std::size_t swept = 0;
  const std::time_t now = std::time(nullptr);
  while (dirent* e = ::readdir(listing)) {
    if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
    struct stat st{};
    if (::fstatat(dir.get(), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) continue;
    if (now - st.st_mtime >= min_age_seconds && ::unlinkat(dir.get(), e->d_name, 0) == 0) ++swept;
  }
  ::closedir(listing);
  return swept;
}

}  // namespace archie::store::fs
