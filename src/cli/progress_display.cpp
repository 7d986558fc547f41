#include "cli/progress_display.hpp"

#include "config/duration.hpp"

#include <cmath>
#include <cstdlib>

namespace archie::cli {

std::chrono::milliseconds progress_display::interval(bool tty) {
  if (const char* env = std::getenv("ARCHIE_PROGRESS_INTERVAL"); env && *env)
    if (auto d = config::parse_duration(env); d && d->count() > 0) return *d;
  return tty ? std::chrono::milliseconds(200) : std::chrono::milliseconds(5000);
}

void progress_display::show(const std::string& phase, const std::vector<progress_field>& fields) {
  auto number = [](const progress_field& f) {
    char buf[64];
    if (f.integer || !std::isfinite(f.value))
      std::snprintf(buf, sizeof buf, "%.0f", std::isfinite(f.value) ? f.value : 0.0);
    else
      std::snprintf(buf, sizeof buf, "%.1f", f.value);
    return std::string(buf);
  };
  std::string line;
  if (tty_) {
    line = "\r\033[K" + phase + ":";
    for (const auto& f : fields) line += " " + f.name + " " + number(f);
    live_ = true;
  } else {
    line = "{\"progress\":\"" + phase + "\"";
    for (const auto& f : fields) line += ",\"" + f.name + "\":" + number(f);
    line += "}\n";
  }
  std::fputs(line.c_str(), out_);
  std::fflush(out_);
}

void progress_display::finish() {
  if (tty_ && live_) std::fputs("\n", out_);
  live_ = false;
  std::fflush(out_);
}

}  // namespace archie::cli
