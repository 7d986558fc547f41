#include "log/logger.hpp"

#include <boost/json/serialize.hpp>

#include <atomic>
#include <charconv>
#include <chrono>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace archie::log {
namespace {

// One line of flat fields. Boost.JSON writes every double in exponent form (0.71 as
// 7.1E-1); a double is written here as the shortest decimal that reads back the same, so
// people and log tools see 0.71. Nested values are rare and keep Boost's form.
std::string serialize_line(const boost::json::object& line) {
  std::string out = "{";
  for (const auto& [k, v] : line) {
    if (out.size() > 1) out += ',';
    out += boost::json::serialize(boost::json::string(k));
    out += ':';
    if (v.is_double()) {
      const double d = v.get_double();
      if (!std::isfinite(d)) {
        out += "null";  // JSON has no NaN or infinity
        continue;
      }
      char buf[32];
      auto r = std::to_chars(buf, buf + sizeof buf, d);
      out.append(buf, r.ptr);
    } else {
      out += boost::json::serialize(v);
    }
  }
  return out + "}";
}

// "ts LEVEL msg key=value ...": strings bare unless they hold a space, a quote, '=' or a
// control character (then JSON-quoted, so a line still splits unambiguously).
std::string text_line(const boost::json::object& line) {
  auto bare = [](std::string_view s) {
    if (s.empty()) return false;
    for (unsigned char c : s)
      if (c <= ' ' || c == '"' || c == '=' || c == 0x7f) return false;
    return true;
  };
  auto value_text = [&](const boost::json::value& v) -> std::string {
    if (v.is_string()) {
      std::string_view s = v.get_string();
      return bare(s) ? std::string(s) : boost::json::serialize(v);
    }
    const std::string wrapped = serialize_line(boost::json::object{{"v", v}});  // {"v":...}
    return wrapped.substr(5, wrapped.size() - 6);
  };
  std::string out;
  auto field = [&](std::string_view k) -> const boost::json::value* {
    auto it = line.find(k);
    return it == line.end() ? nullptr : &it->value();
  };
  if (auto* ts = field("ts"); ts && ts->is_string()) out += std::string_view(ts->get_string());
  if (auto* lv = field("level"); lv && lv->is_string()) {
    std::string upper(lv->get_string());
    for (auto& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    upper.resize(5, ' ');
    out += ' ' + upper;
  }
  if (auto* msg = field("msg"); msg && msg->is_string()) out += ' ' + std::string(msg->get_string());
  for (const auto& [k, v] : line) {
    if (k == "ts" || k == "level" || k == "msg") continue;
    out += ' ';
    out += std::string_view(k);
    out += '=';
    out += value_text(v);
  }
  return out;
}

std::atomic<level> g_level{level::info};
std::atomic<format> g_format{format::json};
std::mutex g_write_mutex;
std::string* g_sink = nullptr;

// RFC 3339 UTC with milliseconds: what log shippers (Loki, Elasticsearch) parse without config.
std::string timestamp_now() {
  using namespace std::chrono;
  auto now = system_clock::now();
  auto secs = time_point_cast<seconds>(now);
  auto ms = duration_cast<milliseconds>(now - secs).count();
  std::time_t t = system_clock::to_time_t(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];  // roomy: GCC cannot prove tm fields are small
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

}  // namespace

std::optional<level> parse_level(std::string_view text) {
  if (text == "trace") return level::trace;
  if (text == "debug") return level::debug;
  if (text == "info") return level::info;
  if (text == "warn") return level::warn;
  if (text == "error") return level::error;
  return std::nullopt;
}

std::string_view to_string(level l) {
  switch (l) {
    case level::trace: return "trace";
    case level::debug: return "debug";
    case level::info: return "info";
    case level::warn: return "warn";
    case level::error: return "error";
  }
  return "info";
}

std::optional<format> parse_format(std::string_view text) {
  if (text == "json") return format::json;
  if (text == "text") return format::text;
  return std::nullopt;
}

void set_format(format f) { g_format.store(f, std::memory_order_relaxed); }

void set_level(level l) { g_level.store(l, std::memory_order_relaxed); }
level current_level() { return g_level.load(std::memory_order_relaxed); }

void write(level l, std::string_view message, boost::json::object fields) {
  try {
    boost::json::object line;
    line.reserve(fields.size() + 3);
    line["ts"] = timestamp_now();
    line["level"] = to_string(l);
    line["msg"] = message;
    for (auto& [k, v] : fields) line[k] = std::move(v);
    std::string text = g_format.load(std::memory_order_relaxed) == format::text ? text_line(line) : serialize_line(line);
    text.push_back('\n');
    std::lock_guard lock(g_write_mutex);
    if (g_sink) {
      g_sink->append(text);
    } else {
      std::fwrite(text.data(), 1, text.size(), stderr);
      std::fflush(stderr);
    }
  } catch (...) {
    // Logging must never take the worker down (e.g. bad_alloc while formatting).
  }
}

void set_sink_for_tests(std::string* sink) {
  std::lock_guard lock(g_write_mutex);
  g_sink = sink;
}

}  // namespace archie::log
