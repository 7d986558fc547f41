#include "health/readiness.hpp"

#include "log/logger.hpp"

namespace archie::health {

void readiness::add_check(std::string name, std::function<check_result()> check) {
  std::lock_guard lock(mutex_);
  checks_.push_back({std::move(name), std::move(check), -1});
}

void readiness::set_shutting_down() {
  std::lock_guard lock(mutex_);
  shutting_down_ = true;
}

readiness_report readiness::evaluate() {
  std::lock_guard lock(mutex_);
  readiness_report report;
  report.ready = !shutting_down_;
  if (shutting_down_) report.checks.emplace_back("shutdown", check_result{false, "shutting down"});
  for (auto& c : checks_) {
    check_result r;
    try {
      r = c.check();
    } catch (const std::exception& e) {
      r = {false, std::string("check failed: ") + e.what()};
    }
    if (c.last != static_cast<int>(r.ok)) {
      if (r.ok) log::info("readiness check ok", {{"check", c.name}, {"detail", r.detail}});
      else log::warn("readiness check failing", {{"check", c.name}, {"detail", r.detail}});
      c.last = static_cast<int>(r.ok);
    }
    report.ready = report.ready && r.ok;
    report.checks.emplace_back(c.name, std::move(r));
  }
  return report;
}

}  // namespace archie::health
