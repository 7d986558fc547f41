#pragma once
// Decides where an object event goes: the route whose source (bucket + prefix) covers the
// key, its destinations with the key rewritten, and whether an exclude pattern applies.
#include "config/config.hpp"

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace archie::route {

/// PCRE2 patterns compiled once (JIT when available); matching is thread-safe.
class key_filter {
 public:
  explicit key_filter(const std::vector<std::string>& patterns);  ///< throws std::invalid_argument naming the pattern
  ~key_filter();
  key_filter(key_filter&&) noexcept;
  bool matches(std::string_view key) const;
  bool empty() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

struct target {
  std::string store;
  std::string bucket;
  std::string key;  ///< rewritten: destination prefix + key without the source prefix
  bool keeps_deletes = false;  ///< deletes = "ignore": a source delete leaves this copy alone
  bool all_versions = false;   ///< versions = "all": every source version, in order (engine/version_history.hpp)
  const config::write_options* write = nullptr;  ///< how this destination writes (the router's config owns it)
};

struct compiled_route {
  config::route_config cfg;
  key_filter exclude_copy;
  key_filter exclude_remove;
};

struct decision {
  const compiled_route* route = nullptr;  ///< null: no route covers the event
  std::vector<target> targets;
};

class router {
 public:
  explicit router(const std::vector<config::route_config>& routes);
  /// The longest matching source prefix wins when several routes cover a key.
  decision route(std::string_view bucket, std::string_view key) const;
  const std::vector<compiled_route>& routes() const { return routes_; }

 private:
  std::vector<compiled_route> routes_;
};

}  // namespace archie::route
