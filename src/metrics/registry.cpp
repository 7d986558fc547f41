#include "metrics/registry.hpp"

#include "metrics/process_metrics.hpp"

#include <prometheus/text_serializer.h>

namespace archie::metrics {

prometheus::Registry& registry() {
  static prometheus::Registry instance;
  return instance;
}

std::string serialize_text() {
  prometheus::TextSerializer serializer;
  auto families = registry().Collect();
  auto process = process_families();
  families.insert(families.end(), process.begin(), process.end());
  return serializer.Serialize(families);
}

}  // namespace archie::metrics
