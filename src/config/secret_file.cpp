#include "config/secret_file.hpp"

#include "log/logger.hpp"
#include "metrics/registry.hpp"

#include <prometheus/counter.h>

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

namespace archie::config {
namespace {

prometheus::Counter& reload_counter(const char* outcome) {
  static auto& family = prometheus::BuildCounter()
                            .Name("archie_secret_reloads_total")
                            .Help("Changed secret files seen, by outcome (applied, or refused: unreadable or "
                                  "empty, the previous value kept)")
                            .Register(metrics::registry());
  return family.Add({{"outcome", outcome}});
}

}  // namespace

std::optional<file_identity> identify_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return file_identity{static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino),
                       static_cast<std::int64_t>(st.st_size),
                       static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec,
                       static_cast<std::int64_t>(st.st_ctim.tv_sec) * 1'000'000'000 + st.st_ctim.tv_nsec};
}

secret_file_watch::secret_file_watch(secret initial) : path_(initial.file_path()), value_(std::move(initial)) {
  if (!path_.empty()) seen_ = identify_file(path_);
}

secret secret_file_watch::value() const {
  std::lock_guard lock(mutex_);
  return value_;
}

std::uint64_t secret_file_watch::reloads() const {
  std::lock_guard lock(mutex_);
  return reloads_;
}

bool secret_file_watch::check_now() {
  const std::string& path = path_;
  if (path.empty()) return false;
  std::lock_guard lock(mutex_);
  auto id = identify_file(path);
  if (id == seen_ || (id && id == refused_)) return false;
  std::string error;
  std::string text = id ? read_secret_file(path, error) : std::string{};
  if (!id) error = "cannot stat " + path + ": " + std::strerror(errno);
  if (!error.empty()) {
    // Mid-swap a path can be briefly missing; report a version once, keep the old value.
    if (id) refused_ = id;
    if (id || seen_) {
      log::warn("secret file changed but cannot be used; keeping the previous value", {{"error", error}});
      reload_counter("refused").Increment();
    }
    seen_ = id;
    return false;
  }
  seen_ = id;
  refused_.reset();
  if (text == value_.reveal()) return false;
  value_ = secret(std::move(text), value_.origin(), path);
  ++reloads_;
  reload_counter("applied").Increment();
  log::info("secret file changed; the new value applies to new requests", {{"secret", value_.origin()}});
  return true;
}

}  // namespace archie::config
