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
  std::string detail;  ///< logged when the check changes state; must not contain secrets
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
  /// Runs every check; a check that changed state since the last evaluation is logged with
  /// its detail (/ready itself shows only ok or failing).
  readiness_report evaluate();

 private:
  struct registered {
    std::string name;
    std::function<check_result()> check;
    int last = -1;  ///< -1 never evaluated, 0 failing, 1 ok
  };
  mutable std::mutex mutex_;
  std::vector<registered> checks_;
  bool shutting_down_ = false;
};

}  // namespace archie::health
