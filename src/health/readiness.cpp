#include "health/readiness.hpp"

namespace archie::health {

void readiness::add_check(std::string name, std::function<check_result()> check) {
  std::lock_guard lock(mutex_);
  checks_.emplace_back(std::move(name), std::move(check));
}

void readiness::set_shutting_down() {
  std::lock_guard lock(mutex_);
  shutting_down_ = true;
}

readiness_report readiness::evaluate() const {
  std::lock_guard lock(mutex_);
  readiness_report report;
  report.ready = !shutting_down_;
  if (shutting_down_) report.checks.emplace_back("shutdown", check_result{false, "shutting down"});
  for (const auto& [name, check] : checks_) {
    check_result r;
    try {
      r = check();
    } catch (const std::exception& e) {
      r = {false, std::string("check failed: ") + e.what()};
    }
    report.ready = report.ready && r.ok;
    report.checks.emplace_back(name, std::move(r));
  }
  return report;
}

}  // namespace archie::health
