#include "metrics/process_metrics.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <dirent.h>

#include <fstream>
#include <sstream>
#include <string>

namespace archie::metrics {
namespace {

prometheus::MetricFamily family(const char* name, const char* help, prometheus::MetricType type, double value) {
  prometheus::MetricFamily f;
  f.name = name;
  f.help = help;
  f.type = type;
  prometheus::ClientMetric m;
  if (type == prometheus::MetricType::Counter) m.counter.value = value;
  else m.gauge.value = value;
  f.metric.push_back(m);
  return f;
}

// Fields of /proc/self/stat after the command name (which may contain spaces and ')').
std::vector<std::string> stat_fields() {
  std::ifstream in("/proc/self/stat");
  std::string line;
  std::getline(in, line);
  auto close = line.rfind(')');
  std::vector<std::string> out;
  if (close == std::string::npos) return out;
  std::istringstream rest(line.substr(close + 2));
  for (std::string f; rest >> f;) out.push_back(f);
  return out;  // out[0] is field 3 (state)
}

double boot_time_seconds() {
  std::ifstream in("/proc/stat");
  for (std::string key; in >> key;) {
    if (key == "btime") {
      double v = 0;
      in >> v;
      return v;
    }
    in.ignore(1 << 16, '\n');
  }
  return 0;
}

}  // namespace

std::vector<prometheus::MetricFamily> process_families() {
  using prometheus::MetricType;
  std::vector<prometheus::MetricFamily> out;
  const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(::sysconf(_SC_PAGESIZE));
  auto f = stat_fields();
  // Field numbers from proc(5): utime 14, stime 15, starttime 22, vsize 23, rss 24.
  if (f.size() > 21 && ticks > 0) {
    double cpu = (std::stod(f[14 - 3]) + std::stod(f[15 - 3])) / ticks;
    out.push_back(family("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
                         MetricType::Counter, cpu));
    out.push_back(family("process_virtual_memory_bytes", "Virtual memory size in bytes.", MetricType::Gauge,
                         std::stod(f[23 - 3])));
    out.push_back(family("process_resident_memory_bytes", "Resident memory size in bytes.", MetricType::Gauge,
                         std::stod(f[24 - 3]) * page));
    if (double btime = boot_time_seconds(); btime > 0)
      out.push_back(family("process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
                           MetricType::Gauge, btime + std::stod(f[22 - 3]) / ticks));
  }
  if (DIR* d = ::opendir("/proc/self/fd")) {
    double n = 0;
    while (auto* e = ::readdir(d))
      if (e->d_name[0] != '.') ++n;
    ::closedir(d);
    out.push_back(family("process_open_fds", "Number of open file descriptors.", MetricType::Gauge, n - 1));  // minus the one reading
  }
  struct rlimit lim {};
  if (::getrlimit(RLIMIT_NOFILE, &lim) == 0)
    out.push_back(family("process_max_fds", "Maximum number of open file descriptors.", MetricType::Gauge,
                         static_cast<double>(lim.rlim_cur)));
  return out;
}

}  // namespace archie::metrics
