#pragma once
// The process-wide Prometheus registry; every component registers its families here and
// the admin server serialises it on /metrics.
#include <prometheus/registry.h>

#include <memory>
#include <string>

namespace archie::metrics {

prometheus::Registry& registry();
/// Prometheus text exposition format (version 0.0.4) of everything registered.
std::string serialize_text();

}  // namespace archie::metrics
