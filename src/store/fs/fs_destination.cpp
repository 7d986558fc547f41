#include "store/fs/fs_destination.hpp"

#include "log/logger.hpp"
#include "async/run_blocking.hpp"
#include "store/fs/beneath.hpp"
#include "async/random_seed.hpp"

#include <boost/asio/post.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>

namespace archie::store::fs {
namespace {

constexpr const char* content_type_xattr = "user.mime_type";  // the freedesktop.org convention

store_error fs_error(const std::string& store, const char* op, const std::string& bucket, const std::string& key,
                     int err, std::string what) {
  error_kind kind = err == ENOENT ? error_kind::not_found
                    : (err == EACCES || err == EPERM) ? error_kind::permission
                    : (err == ENOSPC || err == EIO || err == EAGAIN || err == EDQUOT) ? error_kind::retryable
                                                                                       : error_kind::permanent;
  return store_error{kind, store, op, bucket, key, 0, err ? std::strerror(err) : "invalid_key", std::move(what), ""};
}

std::string staging_name() {
  thread_local std::mt19937_64 rng{async::random_seed()};
  return std::to_string(rng()) + ".part";
}

// A copy being written: an unnamed file (O_TMPFILE) in the target's directory, or, where the
// filesystem cannot make one, a named file in the staging directory.
struct staged_file {
  unique_fd fd;
  unique_fd staging;  ///< root/.archie-staging
  std::string name;   ///< its name in staging; empty while unnamed
};

// Gives an unnamed file a name. AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH on older kernels;
// the /proc/self/fd path works for any owner of the descriptor.
int link_unnamed(int fd, int dir, const std::string& name) {
  if (::linkat(fd, "", dir, name.c_str(), AT_EMPTY_PATH) == 0) return 0;
  std::string proc = "/proc/self/fd/" + std::to_string(fd);
  if (::linkat(AT_FDCWD, proc.c_str(), dir, name.c_str(), AT_SYMLINK_FOLLOW) == 0) return 0;
  return errno;
}

// Creates (once) and opens the staging directory beside the buckets.
int open_staging(int root, mode_t dir_mode, unique_fd& out) {
  if (::mkdirat(root, staging_directory, dir_mode) != 0 && errno != EEXIST) return errno;
  out = unique_fd(::openat(root, staging_directory, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  return out ? 0 : errno;
}

class fs_upload final : public upload {
 public:
  fs_upload(boost::asio::thread_pool& pool, std::string store, std::string bucket, std::string key,
            directory_chain chain, staged_file file, object_info meta, bool fsync,
            std::shared_ptr<http::send_budget> budget)
      : pool_(pool), store_(std::move(store)), bucket_(std::move(bucket)), key_(std::move(key)),
        chain_(std::move(chain)), file_(std::move(file)), meta_(std::move(meta)), fsync_(fsync),
        budget_(std::move(budget)) {}
  ~fs_upload() override { discard(); }

  async_result<done> write_part(int, std::uint64_t offset, const part_body& body) override {
    const std::span<const std::byte> all = body.bytes();
    // Under a bandwidth budget, a chunk at a time, each waiting for its bytes.
    const std::size_t chunk = budget_ ? budget_->body_chunk() : 0;
    for (std::size_t pos = 0; pos < all.size();) {
      const std::size_t n = chunk ? std::min(chunk, all.size() - pos) : all.size();
      if (chunk) co_await budget_->before_body_bytes(n);
      auto written = co_await write_at(offset + pos, all.subspan(pos, n));
      if (!written) co_return written.error();
      pos += n;
    }
    co_return done{};
  }

  async_result<done> write_at(std::uint64_t offset, std::span<const std::byte> bytes) {
    auto write_all = [fd = file_.fd.get(), offset, bytes]() -> int {
      std::size_t pos = 0;
      while (pos < bytes.size()) {
        ssize_t n = ::pwrite(fd, bytes.data() + pos, bytes.size() - pos, static_cast<off_t>(offset + pos));
        if (n < 0) {
          if (errno == EINTR) continue;
          return errno;
        }
        pos += static_cast<std::size_t>(n);
      }
      return 0;
    };
    int err = co_await async::run_blocking(pool_, write_all);
    if (err) co_return fs_error(store_, "write", bucket_, key_, err, "write temp file for " + key_ + " failed");
    co_return done{};
  }

  async_result<done> finish() override {
    auto* self = this;
    // errno and what failed; 0 on success. Everything is relative to the parent directory's
    // fd, so a symlink swapped in meanwhile cannot redirect the rename.
    auto finish_file = [self]() -> std::pair<int, std::string> {
      staged_file& f = self->file_;
      int fd = f.fd.get();
      const auto* etag = self->meta_.metadata(source_etag_metadata);
      if (etag && ::fsetxattr(fd, source_etag_xattr, etag->data(), etag->size(), 0) != 0 && errno != ENOTSUP)
        return {errno, "setxattr"};
      if (!self->meta_.content_type.empty())
        ::fsetxattr(fd, content_type_xattr, self->meta_.content_type.data(), self->meta_.content_type.size(), 0);
      const std::string& tags = self->meta_.tagging;
      if (!tags.empty() && ::fsetxattr(fd, tags_xattr, tags.data(), tags.size(), 0) != 0 && errno != ENOTSUP)
        return {errno, "setxattr"};
      if (self->fsync_ && ::fsync(fd) != 0) return {errno, "fsync"};
      // An unnamed file gets a name in the staging directory only now, for the rename below:
      // rename is what replaces an existing replica atomically (link cannot).
      if (f.name.empty()) {
        std::string name = staging_name();
        if (int err = link_unnamed(fd, f.staging.get(), name))
          return {err, err == EXDEV ? "link into staging (the root and its buckets must be one file system)" : "link"};
        f.name = std::move(name);
      }
      int rc = ::close(f.fd.release());
      if (rc != 0) return {errno, "close"};
      int dir = self->chain_.parent();
      if (::renameat(f.staging.get(), f.name.c_str(), dir, self->chain_.leaf().c_str()) != 0)
        return {errno, errno == EXDEV ? "rename into place (the root and its buckets must be one file system)" : "rename"};
      f.name.clear();
      if (self->fsync_) ::fsync(dir);  // make the rename itself durable
      return {0, {}};
    };
    auto [err, step] = co_await async::run_blocking(pool_, finish_file);
    if (err) {
      auto remove_temp = [self] { self->discard(); };
      co_await async::run_blocking(pool_, remove_temp);
      // EISDIR/ENOTDIR (a key that is also a "directory" key) stay permanent via fs_error.
      co_return fs_error(store_, "finish", bucket_, key_, err, step + " " + key_);
    }
    co_return done{};
  }

  boost::asio::awaitable<void> abort() override {
    auto* self = this;
    auto remove_temp = [self] { self->discard(); };
    co_await async::run_blocking(pool_, remove_temp);
  }

 private:
  // An unnamed file vanishes with its descriptor; a named one is removed from staging.
  void discard() {
    file_.fd = unique_fd();
    if (!file_.name.empty() && file_.staging) ::unlinkat(file_.staging.get(), file_.name.c_str(), 0);
    file_.name.clear();
  }

  boost::asio::thread_pool& pool_;
  std::string store_, bucket_, key_;
  directory_chain chain_;
  staged_file file_;
  object_info meta_;
  bool fsync_;
  std::shared_ptr<http::send_budget> budget_;
};

}  // namespace

std::optional<std::string> safe_path(const std::string& root, const std::string& bucket, const std::string& key) {
  auto ok_segment = [](std::string_view s) {
    return !s.empty() && s != "." && s != ".." && s.find('\0') == std::string_view::npos;
  };
  if (!ok_segment(bucket) || bucket.find('/') != std::string::npos || bucket == staging_directory) return std::nullopt;
  std::string_view k = key;
  std::size_t pos = 0;
  while (pos <= k.size()) {
    auto slash = k.find('/', pos);
    auto seg = k.substr(pos, slash == std::string_view::npos ? std::string_view::npos : slash - pos);
    if (!ok_segment(seg) || seg.size() > 255) return std::nullopt;
    if (slash == std::string_view::npos) break;
    pos = slash + 1;
  }
  return root + "/" + bucket + "/" + key;
}

fs_destination::fs_destination(std::string name, const config::fs_store_config& cfg, boost::asio::thread_pool& blocking,
                               std::shared_ptr<http::send_budget> budget)
    : name_(std::move(name)), cfg_(cfg), blocking_(blocking), budget_(std::move(budget)) {
  // A killed worker on a filesystem without O_TMPFILE leaves partial copies in staging;
  // sweep those that nobody is writing any more (unnamed files need no sweep).
  auto root = cfg_.root;
  auto store = name_;
  boost::asio::post(blocking_, [root, store] {
    std::size_t n = sweep_staging(root, 60);
    if (n) log::info("removed leftover temp files", {{"store", store}, {"count", static_cast<std::int64_t>(n)}});
  });
}

async_result<std::optional<object_info>> fs_destination::replica_info(const std::string& bucket,
                                                                    const std::string& key) {
  if (!safe_path(cfg_.root, bucket, key))
    co_return fs_error(name_, "stat", bucket, key, 0, "key cannot be stored safely under the root");
  std::string relative = bucket + "/" + key;
  const std::string& root = cfg_.root;
  struct found {
    int err = 0;  ///< a real failure (errno)
    bool exists = false;
    object_info info;
  };
  auto failed = [](int err) {
    found f;
    f.err = err;
    return f;
  };
  // What the extended attributes say; absent files and attributes are not errors.
  auto read_replica = [&root, &relative, &failed]() -> found {
    directory_chain chain;
    int err = open_chain(root, relative, false, 0, chain);
    if (err == ENOENT || err == ENOTDIR) return {};
    if (err) return failed(err);
    unique_fd fd(::openat(chain.parent(), chain.leaf().c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
    if (!fd) return failed(errno == ENOENT || errno == ENOTDIR ? 0 : errno);
    found out;
    out.exists = true;
    struct stat st{};
    if (::fstat(fd.get(), &st) == 0) out.info.size = static_cast<std::uint64_t>(st.st_size);
    auto read_attr = [&](const char* name, std::string& into) -> int {
      char buf[4096];
      ssize_t n = ::fgetxattr(fd.get(), name, buf, sizeof buf);
      if (n >= 0) {
        into.assign(buf, static_cast<std::size_t>(n));
      } else if (errno == ERANGE) {  // a large tag set: ask its size, then read it whole
        ssize_t size = ::fgetxattr(fd.get(), name, nullptr, 0);
        if (size < 0) return errno;
        into.resize(static_cast<std::size_t>(size));
        n = ::fgetxattr(fd.get(), name, into.data(), into.size());
        if (n < 0) return errno;
        into.resize(static_cast<std::size_t>(n));
      }
      return n < 0 && errno != ENODATA && errno != ENOTSUP ? errno : 0;
    };
    std::string marker;
    if (int e = read_attr(source_etag_xattr, marker)) return failed(e);
    if (int e = read_attr(content_type_xattr, out.info.content_type)) return failed(e);
    if (int e = read_attr(tags_xattr, out.info.tagging)) return failed(e);
    if (!marker.empty()) out.info.user_metadata.emplace_back(source_etag_metadata, std::move(marker));
    return out;
  };
  auto r = co_await async::run_blocking(blocking_, read_replica);
  if (r.err) co_return fs_error(name_, "getxattr", bucket, key, r.err, "read marker of " + relative);
  if (!r.exists) co_return std::optional<object_info>();
  co_return std::optional<object_info>(std::move(r.info));
}

async_result<std::unique_ptr<upload>> fs_destination::begin(const std::string& bucket, const std::string& key,
                                                            const object_info& meta, std::uint64_t,
                                                            std::size_t, const upload_options&) {
  if (!safe_path(cfg_.root, bucket, key))
    co_return fs_error(name_, "open", bucket, key, 0, "key cannot be stored safely under the root " + cfg_.root);
  std::string relative = bucket + "/" + key;
  directory_chain chain;
  staged_file file;
  const auto& c = cfg_;
  auto open_temp = [&c, &relative, &chain, &file]() -> int {  // errno
    int err = open_chain(c.root, relative, true, static_cast<mode_t>(c.dir_mode), chain);
    if (err) return err;
    if ((err = open_staging(chain.dirs.front().get(), static_cast<mode_t>(c.dir_mode), file.staging))) return err;
    const auto mode = static_cast<mode_t>(c.file_mode);
    // Unnamed: no key can collide with it, and the kernel frees it if this process dies.
    file.fd = unique_fd(::openat(chain.parent(), ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, mode));
    if (!file.fd) {
      if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) return errno;
      file.name = staging_name();
      file.fd = unique_fd(::openat(file.staging.get(), file.name.c_str(),
                                   O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode));
      if (!file.fd) {
        file.name.clear();
        return errno;
      }
    }
    // The umask must not widen or narrow what the operator configured.
    ::fchmod(file.fd.get(), mode);
    return 0;
  };
  int err = co_await async::run_blocking(blocking_, open_temp);
  if (err)
    co_return fs_error(name_, "open", bucket, key, err,
                       err == ELOOP || err == ENOTDIR ? "a path component of " + relative + " is a symlink or a file"
                                                      : "create temp file for " + relative);
  co_return std::unique_ptr<upload>(
      std::make_unique<fs_upload>(blocking_, name_, bucket, key, std::move(chain), std::move(file), meta, cfg_.fsync,
                                  budget_));
}

async_result<done> fs_destination::remove(const std::string& bucket, const std::string& key) {
  if (!safe_path(cfg_.root, bucket, key))
    co_return fs_error(name_, "unlink", bucket, key, 0, "key cannot be stored safely under the root");
  std::string relative = bucket + "/" + key;
  const std::string& root = cfg_.root;
  auto unlink_and_prune = [&root, &relative]() -> int {
    directory_chain chain;
    int err = open_chain(root, relative, false, 0, chain);
    if (err == ENOENT || err == ENOTDIR) return 0;  // nothing there: done
    if (err) return err;
    if (::unlinkat(chain.parent(), chain.leaf().c_str(), 0) != 0 && errno != ENOENT) return errno;
    // Empty parents would turn a later object named like the directory into EISDIR.
    prune_empty_directories(chain, 1);
    return 0;
  };
  int err = co_await async::run_blocking(blocking_, unlink_and_prune);
  if (err) co_return fs_error(name_, "unlink", bucket, key, err, relative);
  co_return done{};
}

async_result<done> fs_destination::set_tagging(const std::string& bucket, const std::string& key, const object_info&,
                                               const std::string& tagging) {
  if (!safe_path(cfg_.root, bucket, key))
    co_return fs_error(name_, "setxattr", bucket, key, 0, "key cannot be stored safely under the root");
  std::string relative = bucket + "/" + key;
  const std::string& root = cfg_.root;
  auto set_tags = [&root, &relative, &tagging]() -> int {  // errno
    directory_chain chain;
    if (int err = open_chain(root, relative, false, 0, chain)) return err == ENOTDIR ? ENOENT : err;
    unique_fd fd(::openat(chain.parent(), chain.leaf().c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
    if (!fd) return errno;
    int rc = tagging.empty() ? ::fremovexattr(fd.get(), tags_xattr)
                             : ::fsetxattr(fd.get(), tags_xattr, tagging.data(), tagging.size(), 0);
    return rc != 0 && !(tagging.empty() && errno == ENODATA) ? errno : 0;
  };
  int err = co_await async::run_blocking(blocking_, set_tags);
  if (err) co_return fs_error(name_, "setxattr", bucket, key, err, "tags of " + relative);
  co_return done{};
}

async_result<done> fs_destination::read(const std::string& bucket, const std::string& key, std::span<std::byte> into,
                                        std::uint64_t offset) {
  if (!safe_path(cfg_.root, bucket, key))
    co_return fs_error(name_, "read", bucket, key, 0, "key cannot be stored safely under the root");
  std::string relative = bucket + "/" + key;
  const std::string& root = cfg_.root;
  auto read_file = [&root, &relative, into, offset]() -> int {
    directory_chain chain;
    if (int err = open_chain(root, relative, false, 0, chain)) return err == ENOTDIR ? ENOENT : err;
    unique_fd fd(::openat(chain.parent(), chain.leaf().c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
    if (!fd) return errno;
    std::size_t pos = 0;
    while (pos < into.size()) {
      ssize_t n = ::pread(fd.get(), into.data() + pos, into.size() - pos, static_cast<off_t>(offset + pos));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return errno;
      if (n == 0) return EIO;  // shorter than listed: changed under us
      pos += static_cast<std::size_t>(n);
    }
    return 0;
  };
  int err = co_await async::run_blocking(blocking_, read_file);
  if (err) co_return fs_error(name_, "read", bucket, key, err, "read " + relative);
  co_return done{};
}

async_result<done> fs_destination::check_bucket(const std::string&) {
  const std::string& root = cfg_.root;
  auto stat_root = [&root]() -> int {
    struct stat st{};
    if (::stat(root.c_str(), &st) != 0) return errno;
    return S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
  };
  int err = co_await async::run_blocking(blocking_, stat_root);
  if (err) co_return fs_error(name_, "stat", "", "", err, "root " + cfg_.root + " is not a directory");
  co_return done{};
}

}  // namespace archie::store::fs
