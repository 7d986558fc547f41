#pragma once
// Named readiness checks behind /ready. Components register a check that reports their
// own state (NATS connected, store reachable); /ready is true only when all pass and the
// process is not shutting down.
#include <functional>
#include <mutex>
#include <string>
#include <vector>

namespace archie::health {

struct check_result {
  bool ok = false;
  std::string detail;  ///< shown on /ready; must not contain secrets
};

struct readiness_report {
  bool ready = false;
  std::vector<std::pair<std::string, check_result>> checks;
};

class readiness {
 public:
  /// `check` must be cheap and thread-safe: it runs on every /ready request.
  void add_check(std::string name, std::function<check_result()> check);
  void set_shutting_down();
  readiness_report evaluate() const;

 private:
  mutable std::mutex mutex_;
  std::vector<std::pair<std::string, std::function<check_result()>>> checks_;
  bool shutting_down_ = false;
};

}  // namespace archie::health
