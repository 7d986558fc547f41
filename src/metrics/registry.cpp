#include "metrics/registry.hpp"

#include <prometheus/text_serializer.h>

namespace archie::metrics {

prometheus::Registry& registry() {
  static prometheus::Registry instance;
  return instance;
}

std::string serialize_text() {
  prometheus::TextSerializer serializer;
  return serializer.Serialize(registry().Collect());
}

}  // namespace archie::metrics
