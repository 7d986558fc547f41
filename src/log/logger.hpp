#pragma once
// Structured logging: one line per message on stderr, safe from any thread. JSON objects for
// log shippers (the default), or `ts LEVEL msg key=value ...` for people at a terminal.
#include <boost/json/object.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace archie::log {

enum class level { trace, debug, info, warn, error };

/// Parses "trace|debug|info|warn|error" (case-sensitive); nullopt on anything else.
std::optional<level> parse_level(std::string_view text);
std::string_view to_string(level l);

enum class format { json, text };

/// Parses "json|text"; nullopt on anything else.
std::optional<format> parse_format(std::string_view text);
/// How lines are written from now on (json by default).
void set_format(format f);

/// Sets the minimum level written; messages below it are dropped before formatting.
void set_level(level l);
level current_level();

/// Writes {"ts":...,"level":...,"msg":...,<fields>} as one line (or its text form). Never
/// throws.
void write(level l, std::string_view message, boost::json::object fields = {});

inline bool enabled(level l) { return l >= current_level(); }
inline void trace(std::string_view m, boost::json::object f = {}) { if (enabled(level::trace)) write(level::trace, m, std::move(f)); }
inline void debug(std::string_view m, boost::json::object f = {}) { if (enabled(level::debug)) write(level::debug, m, std::move(f)); }
inline void info(std::string_view m, boost::json::object f = {}) { if (enabled(level::info)) write(level::info, m, std::move(f)); }
inline void warn(std::string_view m, boost::json::object f = {}) { if (enabled(level::warn)) write(level::warn, m, std::move(f)); }
inline void error(std::string_view m, boost::json::object f = {}) { if (enabled(level::error)) write(level::error, m, std::move(f)); }

/// Test hook: redirects output to a string sink (nullptr restores stderr).
void set_sink_for_tests(std::string* sink);

}  // namespace archie::log
