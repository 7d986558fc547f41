#include "store/fs/fs_destination.hpp"

#include "queue/blocking_pool.hpp"

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

constexpr const char* etag_xattr = "user.archie-source-etag";
constexpr const char* content_type_xattr = "user.mime_type";  // the freedesktop.org convention

store_error fs_error(const std::string& store, const char* op, const std::string& bucket, const std::string& key,
                     int err, std::string what) {
  error_kind kind = err == ENOENT ? error_kind::not_found
                    : (err == EACCES || err == EPERM) ? error_kind::permission
                    : (err == ENOSPC || err == EIO || err == EAGAIN || err == EDQUOT) ? error_kind::retryable
                                                                                       : error_kind::permanent;
  return store_error{kind, store, op, bucket, key, 0, err ? std::strerror(err) : "invalid_key", std::move(what), ""};
}

class fs_upload final : public upload {
 public:
  fs_upload(boost::asio::thread_pool& pool, std::string store, std::string bucket, std::string key, std::string final_path,
            std::string tmp_path, int fd, object_info meta, bool fsync)
      : pool_(pool), store_(std::move(store)), bucket_(std::move(bucket)), key_(std::move(key)),
        final_(std::move(final_path)), tmp_(std::move(tmp_path)), fd_(fd), meta_(std::move(meta)), fsync_(fsync) {}
  ~fs_upload() override {
    if (fd_ >= 0) {
      ::close(fd_);
      ::unlink(tmp_.c_str());
    }
  }

  async_result<done> write_part(int, std::uint64_t offset, std::span<const std::byte> bytes) override {
    auto write_all = [fd = fd_, offset, bytes]() -> int {
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
    int err = co_await queue::run_blocking(pool_, write_all);
    if (err) co_return fs_error(store_, "write", bucket_, key_, err, "write " + tmp_ + " failed");
    co_return done{};
  }

  async_result<done> finish() override {
    auto* self = this;
    // errno and what failed; 0 on success.
    auto finish_file = [self]() -> std::pair<int, std::string> {
      const auto* etag = self->meta_.metadata(source_etag_metadata);
      if (etag && ::fsetxattr(self->fd_, etag_xattr, etag->data(), etag->size(), 0) != 0 && errno != ENOTSUP)
        return {errno, "setxattr"};
      if (!self->meta_.content_type.empty())
        ::fsetxattr(self->fd_, content_type_xattr, self->meta_.content_type.data(), self->meta_.content_type.size(), 0);
      if (self->fsync_ && ::fsync(self->fd_) != 0) return {errno, "fsync"};
      int rc = ::close(self->fd_);
      self->fd_ = -1;
      if (rc != 0) return {errno, "close"};
      if (::rename(self->tmp_.c_str(), self->final_.c_str()) != 0) return {errno, "rename"};
      if (self->fsync_) {  // make the rename itself durable
        std::string dir = std::filesystem::path(self->final_).parent_path().string();
        int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
        if (dfd >= 0) {
          ::fsync(dfd);
          ::close(dfd);
        }
      }
      return {0, {}};
    };
    auto [err, step] = co_await queue::run_blocking(pool_, finish_file);
    if (err) {
      ::unlink(tmp_.c_str());
      // EISDIR/ENOTDIR (a key that is also a "directory" key) stay permanent via fs_error.
      co_return fs_error(store_, "finish", bucket_, key_, err, step + " " + final_);
    }
    co_return done{};
  }

  boost::asio::awaitable<void> abort() override {
    if (fd_ >= 0) {
      ::close(fd_);
      fd_ = -1;
    }
    ::unlink(tmp_.c_str());
    co_return;
  }

 private:
  boost::asio::thread_pool& pool_;
  std::string store_, bucket_, key_, final_, tmp_;
  int fd_;
  object_info meta_;
  bool fsync_;
};

}  // namespace

std::optional<std::string> safe_path(const std::string& root, const std::string& bucket, const std::string& key) {
  auto ok_segment = [](std::string_view s) {
    return !s.empty() && s != "." && s != ".." && s.find('\0') == std::string_view::npos;
  };
  if (!ok_segment(bucket) || bucket.find('/') != std::string::npos) return std::nullopt;
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

fs_destination::fs_destination(std::string name, const config::fs_store_config& cfg, boost::asio::thread_pool& blocking)
    : name_(std::move(name)), cfg_(cfg), blocking_(blocking) {}

async_result<std::string> fs_destination::recorded_source_etag(const std::string& bucket, const std::string& key) {
  auto path = safe_path(cfg_.root, bucket, key);
  if (!path) co_return fs_error(name_, "stat", bucket, key, 0, "key cannot be stored safely under the root");
  char buf[256];
  ssize_t n = ::getxattr(path->c_str(), etag_xattr, buf, sizeof buf);
  if (n < 0) {
    if (errno == ENOENT || errno == ENODATA || errno == ENOTSUP || errno == ENOTDIR) co_return std::string();
    co_return fs_error(name_, "getxattr", bucket, key, errno, *path);
  }
  co_return std::string(buf, static_cast<std::size_t>(n));
}

async_result<std::unique_ptr<upload>> fs_destination::begin(const std::string& bucket, const std::string& key,
                                                            const object_info& meta, std::uint64_t,
                                                            std::size_t) {
  auto path = safe_path(cfg_.root, bucket, key);
  if (!path) co_return fs_error(name_, "open", bucket, key, 0, "key cannot be stored safely under the root " + cfg_.root);
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string dir = std::filesystem::path(*path).parent_path().string();
  std::string tmp = dir + "/.archie-" + std::to_string(rng()) + ".tmp";
  std::string p = *path;
  auto open_temp = [dir, tmp]() -> int {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return -ec.value();
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    return fd >= 0 ? fd : -errno;
  };
  int result_fd = co_await queue::run_blocking(blocking_, open_temp);
  if (result_fd < 0) co_return fs_error(name_, "open", bucket, key, -result_fd, "create " + tmp);
  co_return std::unique_ptr<upload>(
      std::make_unique<fs_upload>(blocking_, name_, bucket, key, p, tmp, result_fd, meta, cfg_.fsync));
}

async_result<done> fs_destination::remove(const std::string& bucket, const std::string& key) {
  auto path = safe_path(cfg_.root, bucket, key);
  if (!path) co_return fs_error(name_, "unlink", bucket, key, 0, "key cannot be stored safely under the root");
  if (::unlink(path->c_str()) != 0 && errno != ENOENT) co_return fs_error(name_, "unlink", bucket, key, errno, *path);
  co_return done{};
}

async_result<done> fs_destination::check_bucket(const std::string&) {
  struct stat st{};
  if (::stat(cfg_.root.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    co_return fs_error(name_, "stat", "", "", errno ? errno : ENOTDIR, "root " + cfg_.root + " is not a directory");
  co_return done{};
}

}  // namespace archie::store::fs
