#pragma once
// Typed, validating access to one TOML table. Each read records the effective value
// (default or given; secrets redacted) into a mirror table that check-config prints, and
// each key read is marked so finish() can reject unknown keys with a suggestion.
#include "config/config_error.hpp"
#include "config/secret.hpp"

#include <toml++/toml.h>

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace archie::config::detail {

struct read_context {
  std::vector<problem> problems;
};

class table_reader {
 public:
  table_reader(const toml::table* table, std::string path, read_context& ctx, toml::table* effective);
  table_reader(table_reader&& other) noexcept;
  table_reader& operator=(table_reader&&) = delete;
  ~table_reader();

  std::string string(std::string_view key, std::string fallback);
  /// A string, or an integer read as its decimal text (sizes: "20MB" or 20000000).
  std::string string_or_integer(std::string_view key, std::string fallback);
  std::string choice(std::string_view key, std::string fallback, std::initializer_list<std::string_view> allowed);
  /// A closed choice read into an enum: `names` maps every TOML spelling to its value.
  template <class E>
  E enum_choice(std::string_view key, E fallback, std::initializer_list<std::pair<std::string_view, E>> names) {
    std::vector<std::string_view> allowed;
    std::string fallback_name;
    for (const auto& [name, value] : names) {
      allowed.push_back(name);
      if (value == fallback) fallback_name = name;
    }
    std::string chosen = choice_among(key, fallback_name, allowed);
    for (const auto& [name, value] : names)
      if (name == chosen) return value;
    return fallback;
  }
  std::int64_t integer(std::string_view key, std::int64_t fallback, std::int64_t min, std::int64_t max);
  double number(std::string_view key, double fallback, double min, double max);
  bool boolean(std::string_view key, bool fallback);
  std::chrono::milliseconds duration(std::string_view key, std::chrono::milliseconds fallback,
                                     std::chrono::milliseconds min, std::chrono::milliseconds max);
  std::vector<std::string> string_list(std::string_view key, std::vector<std::string> fallback);
  std::vector<std::chrono::milliseconds> duration_list(std::string_view key);
  /// Reads `key`, `key_env` (name of an env var) or `key_file` (path, trailing newline dropped);
  /// at most one may be set.
  secret secret_value(std::string_view key, bool required);

  /// A nested table; absent tables read as empty so defaults apply.
  table_reader table(std::string_view key);
  /// Names of the sub-tables of this table (for `[stores.NAME]`).
  std::vector<std::string> child_names();
  /// Readers for an array of tables (`[[route]]`).
  std::vector<table_reader> array_of_tables(std::string_view key);

  bool has(std::string_view key) const;
  void fail(std::string_view key, std::string reason);
  const std::string& path() const { return path_; }

  /// A list of server URLs; the effective config shows them without userinfo (credentials).
  std::vector<std::string> url_list(std::string_view key, std::vector<std::string> fallback);

  /// Reports every key that was never read. Called by the destructor if not called earlier.
  void finish();

 private:
  std::string choice_among(std::string_view key, std::string fallback, const std::vector<std::string_view>& allowed);
  const toml::node* lookup(std::string_view key);
  std::string key_path(std::string_view key) const;
  int line_of(std::string_view key) const;
  template <class V>
  void record(std::string_view key, V&& value) {
    if (effective_) effective_->insert_or_assign(key, std::forward<V>(value));
  }
  template <class T>
  std::optional<T> typed(std::string_view key, const char* expected);

  const toml::table* table_;
  std::string path_;
  read_context* ctx_;
  toml::table* effective_;
  std::set<std::string, std::less<>> read_keys_;
  bool finished_ = false;
};

}  // namespace archie::config::detail
