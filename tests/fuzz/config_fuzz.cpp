// Config text (src/config/config.cpp and detail/table_reader.cpp). Operators write it, but a
// typo must come back as a config_error naming the problem, never as a crash or another
// exception. Inputs with a key ending in "_file" are skipped (returned as not interesting):
// secret_value() opens such paths, and a fuzzer must never read files by name.
#include "config/config.hpp"
#include "tests/fuzz/fuzz_support.hpp"

#include <toml++/toml.h>

namespace {

bool names_a_file(const toml::node& node) {
  if (const auto* table = node.as_table()) {
    for (const auto& [key, value] : *table) {
      std::string_view k = key.str();
      if (k.size() >= 5 && k.substr(k.size() - 5) == "_file") return true;
      if (names_a_file(value)) return true;
    }
  } else if (const auto* array = node.as_array()) {
    for (const auto& element : *array)
      if (names_a_file(element)) return true;
  }
  return false;
}

// True when the text might define a *_file key. Only a key spelled with "_file" or with a
// \u escape (quoted keys) can; the rest skip the second parse.
bool may_name_a_file(std::string_view text) {
  if (text.find("_file") == std::string_view::npos && text.find("\\u") == std::string_view::npos &&
      text.find("\\U") == std::string_view::npos)
    return false;
  try {
    return names_a_file(toml::parse(text));
  } catch (const toml::parse_error&) {
    return false;  // config::parse stops at the same syntax error, before reading any key
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto text = archie::fuzz::as_text(data, size);
  if (may_name_a_file(text)) return -1;
  try {
    auto loaded = archie::config::parse(text, "fuzz.toml");
    FUZZ_REQUIRE(!loaded.effective_toml.empty());
  } catch (const archie::config::config_error& e) {
    FUZZ_REQUIRE(!archie::config::describe(e).empty());
  }
  return 0;
}
