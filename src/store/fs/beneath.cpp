#include "store/fs/beneath.hpp"

#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <mutex>

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

namespace {

long sweep_min_age = 0;
std::size_t swept = 0;

int sweep_one(const char* path, const struct stat* st, int type, struct FTW* ftw) {
  if (type != FTW_F) return 0;
  const char* base = path + ftw->base;
  std::size_t len = std::strlen(base);
  bool temp = std::strncmp(base, ".archie-", 8) == 0 && len > 12 && std::strcmp(base + len - 4, ".tmp") == 0;
  if (temp && std::time(nullptr) - st->st_mtime >= sweep_min_age && ::unlink(path) == 0) ++swept;
  return 0;
}

}  // namespace

std::size_t sweep_temp_files(const std::string& root, long min_age_seconds) {
  // nftw's callback has no user pointer, so its state is global: one sweep at a time.
  static std::mutex one_at_a_time;
  std::lock_guard lock(one_at_a_time);
  sweep_min_age = min_age_seconds;
  swept = 0;
  ::nftw(root.c_str(), sweep_one, 32, FTW_PHYS);
  return swept;
}

}  // namespace archie::store::fs
