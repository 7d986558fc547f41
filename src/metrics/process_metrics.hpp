#pragma once
// The standard process_* metrics (what client_golang and client_python export), read from
// /proc/self at scrape time: prometheus-cpp has no collector for them.
#include <prometheus/metric_family.h>

#include <vector>

namespace archie::metrics {

/// process_cpu_seconds_total, process_resident_memory_bytes, process_virtual_memory_bytes,
/// process_open_fds, process_max_fds, process_start_time_seconds. Families whose source
/// cannot be read are left out rather than reported as 0.
std::vector<prometheus::MetricFamily> process_families();

}  // namespace archie::metrics
