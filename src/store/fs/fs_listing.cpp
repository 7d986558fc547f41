#include "store/fs/fs_listing.hpp"

#include "async/run_blocking.hpp"
#include "store/fs/fs_destination.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace archie::store::fs {

struct fs_listing::walker {
  struct directory {
    unique_fd fd;
    std::string path;  ///< the key prefix of its entries ("" or "a/b/")
    std::vector<std::string> names;  ///< sorted; subdirectories end in '/'
    std::size_t next = 0;
  };
  std::string root, bucket, prefix;
  std::vector<directory> stack;
  bool started = false;

  // Whether a directory whose keys start with `dir_key` ("a/b/") can hold keys under prefix.
  bool may_hold(const std::string& dir_key) const {
    return dir_key.compare(0, std::min(dir_key.size(), prefix.size()), prefix, 0,
                           std::min(dir_key.size(), prefix.size())) == 0;
  }

  int push(int fd, std::string path) {
    int copy = ::dup(fd);
    if (copy < 0) return errno;
    DIR* d = ::fdopendir(copy);
    if (!d) {
      int e = errno;
      ::close(copy);
      return e;
    }
    directory dir{unique_fd(fd), std::move(path), {}, 0};
    errno = 0;
    while (dirent* e = ::readdir(d)) {
      std::string_view name = e->d_name;
      if (name == "." || name == "..") continue;
      unsigned char type = e->d_type;
      if (type == DT_UNKNOWN) {
        struct stat st{};
        if (::fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
        type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG : DT_UNKNOWN;
      }
      if (type == DT_DIR) {
        std::string key = dir.path + std::string(name) + "/";
        if (may_hold(key)) dir.names.push_back(std::string(name) + "/");
      } else if (type == DT_REG) {
        dir.names.emplace_back(name);
      }
    }
    int err = errno;
    ::closedir(d);
    if (err) return err;
    std::sort(dir.names.begin(), dir.names.end());
    stack.push_back(std::move(dir));
    return 0;
  }

  // Up to `max` entries into `out`; returns 0 or an errno. An empty `out` means finished.
  int fill(std::vector<listed_entry>& out, std::size_t max) {
    if (!started) {
      started = true;
      unique_fd top(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      if (!top) return errno;
      int fd = ::openat(top.get(), bucket.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0) return errno == ENOENT ? 0 : errno;  // no bucket directory yet: nothing listed
      if (int e = push(fd, "")) return e;
    }
    while (!stack.empty() && out.size() < max) {
      auto& dir = stack.back();
      if (dir.next == dir.names.size()) {
        stack.pop_back();
        continue;
      }
      std::string name = dir.names[dir.next++];
      if (name.back() == '/') {
        name.pop_back();
        int fd = ::openat(dir.fd.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
          if (errno == ENOENT || errno == ELOOP || errno == ENOTDIR) continue;  // changed under us
          return errno;
        }
        std::string path = dir.path + name + "/";
        if (int e = push(fd, std::move(path))) return e;
        continue;
      }
      std::string key = dir.path + name;
      if (key.compare(0, prefix.size(), prefix) != 0) continue;
      unique_fd file(::openat(dir.fd.get(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
      if (!file) {
        if (errno == ENOENT || errno == ELOOP) continue;
        return errno;
      }
      struct stat st{};
      if (::fstat(file.get(), &st) != 0) return errno;
      listed_entry entry{std::move(key), static_cast<std::uint64_t>(st.st_size), {}, std::string()};
      char buf[1024];
      ssize_t n = ::fgetxattr(file.get(), source_etag_xattr, buf, sizeof buf);
      if (n > 0) entry.marker->assign(buf, static_cast<std::size_t>(n));
      out.push_back(std::move(entry));
    }
    return 0;
  }
};

fs_listing::fs_listing(boost::asio::thread_pool& blocking, std::string store, std::string root, std::string bucket,
                       std::string prefix)
    : blocking_(blocking), store_(std::move(store)), bucket_(bucket), walker_(std::make_unique<walker>()) {
  walker_->root = std::move(root);
  walker_->bucket = std::move(bucket);
  walker_->prefix = std::move(prefix);
}

fs_listing::~fs_listing() = default;

async_result<std::vector<listed_entry>> fs_listing::next_page() {
  std::vector<listed_entry> page;
  auto* w = walker_.get();
  auto walk = [w, &page]() -> int { return w->fill(page, static_cast<std::size_t>(listing_page_size)); };
  int err = co_await async::run_blocking(blocking_, walk);
  if (err) {
    error_kind kind = err == EACCES || err == EPERM ? error_kind::permission : error_kind::retryable;
    co_return store_error{kind, store_, "list", bucket_, "", 0, std::strerror(err), "walk " + walker_->root + "/" + bucket_, ""};
  }
  co_return page;
}

}  // namespace archie::store::fs
