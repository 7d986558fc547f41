#pragma once
// Progress of long commands on stderr, as operators expect from rclone and mc: on a terminal
// one live line rewritten in place (\r, erase line); otherwise one JSON object per line, so
// logs and pipelines can read it. The command supplies the fields; the display decides form
// and cadence.
#include <chrono>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

namespace archie::cli {

struct progress_field {
  std::string name;
  double value = 0;
  bool integer = true;
};

class progress_display {
 public:
  /// `tty`: live line; else JSON lines. `interval`: the update cadence the caller uses.
  progress_display(std::FILE* out, bool tty) : out_(out), tty_(tty) {}
  /// Update cadence: 200 ms on a terminal, else 5 s or $ARCHIE_PROGRESS_INTERVAL ("500ms").
  static std::chrono::milliseconds interval(bool tty);
  /// One update: the phase ("listing", "repairing") and its counters.
  void show(const std::string& phase, const std::vector<progress_field>& fields);
  /// Ends the live line (a newline after it) so the summary starts on a fresh line.
  void finish();
  bool tty() const { return tty_; }

 private:
  std::FILE* out_;
  bool tty_;
  bool live_ = false;
};

}  // namespace archie::cli
