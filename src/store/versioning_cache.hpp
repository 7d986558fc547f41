#pragma once
// A bucket's versioning status (S3 GetBucketVersioning, GCS versioning.enabled), remembered
// for a few minutes: asked once per bucket per event would double the requests of small
// keys, and never again would miss a bucket whose versioning was suspended meanwhile.
#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>

namespace archie::store {

class versioning_cache {
 public:
  static constexpr std::chrono::minutes ttl{5};

  std::optional<std::string> get(const std::string& bucket) {
    std::lock_guard lock(mutex_);
    auto it = status_.find(bucket);
    if (it == status_.end() || std::chrono::steady_clock::now() - it->second.second > ttl) return std::nullopt;
    return it->second.first;
  }

  void put(const std::string& bucket, const std::string& status) {
    std::lock_guard lock(mutex_);
    status_[bucket] = {status, std::chrono::steady_clock::now()};
  }

 private:
  std::mutex mutex_;
  std::map<std::string, std::pair<std::string, std::chrono::steady_clock::time_point>> status_;
};

}  // namespace archie::store
