#include "config/detail/table_reader.hpp"

#include "config/secret_file.hpp"

#include "config/url_redaction.hpp"

#include "config/duration.hpp"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace archie::config::detail {
namespace {

std::string_view type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::array: return "an array";
    case toml::node_type::table: return "a table";
    default: return "a date/time";
  }
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

}  // namespace

table_reader::table_reader(const toml::table* table, std::string path, read_context& ctx, toml::table* effective)
    : table_(table), path_(std::move(path)), ctx_(&ctx), effective_(effective) {}

table_reader::table_reader(table_reader&& other) noexcept
    : table_(other.table_),
      path_(std::move(other.path_)),
      ctx_(other.ctx_),
      effective_(other.effective_),
      read_keys_(std::move(other.read_keys_)),
      finished_(other.finished_) {
  other.finished_ = true;
}

table_reader::~table_reader() { finish(); }

std::string table_reader::key_path(std::string_view key) const {
  return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
}

int table_reader::line_of(std::string_view key) const {
  if (!table_) return 0;
  if (const toml::node* n = table_->get(key)) return static_cast<int>(n->source().begin.line);
  return static_cast<int>(table_->source().begin.line);
}

void table_reader::fail(std::string_view key, std::string reason) {
  ctx_->problems.push_back({key_path(key), std::move(reason), line_of(key)});
}

bool table_reader::has(std::string_view key) const { return table_ && table_->contains(key); }

const toml::node* table_reader::lookup(std::string_view key) {
  read_keys_.emplace(key);
  return table_ ? table_->get(key) : nullptr;
}

template <class T>
std::optional<T> table_reader::typed(std::string_view key, const char* expected) {
  const toml::node* n = lookup(key);
  if (!n) return std::nullopt;
  if (auto v = n->value_exact<T>()) return v;
  fail(key, std::string("expected ") + expected + ", got " + std::string(type_name(*n)));
  return std::nullopt;
}

std::string table_reader::string(std::string_view key, std::string fallback) {
  std::string v = typed<std::string>(key, "a string").value_or(std::move(fallback));
  record(key, toml::value<std::string>(v));
  return v;
}

std::string table_reader::string_or_integer(std::string_view key, std::string fallback) {
  std::string v = std::move(fallback);
  if (const toml::node* n = lookup(key)) {
    if (auto text = n->value_exact<std::string>()) v = *text;
    else if (auto i = n->value_exact<std::int64_t>()) v = std::to_string(*i);
    else fail(key, "expected a string or an integer, got " + std::string(type_name(*n)));
  }
  record(key, toml::value<std::string>(v));
  return v;
}

std::string table_reader::choice(std::string_view key, std::string fallback,
                                 std::initializer_list<std::string_view> allowed) {
  return choice_among(key, std::move(fallback), std::vector<std::string_view>(allowed));
}

std::string table_reader::choice_among(std::string_view key, std::string fallback,
                                       const std::vector<std::string_view>& allowed) {
  std::string v = typed<std::string>(key, "a string").value_or(fallback);
  if (std::find(allowed.begin(), allowed.end(), v) == allowed.end()) {
    std::string list;
    for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
    fail(key, "must be one of " + list + ", got \"" + v + "\"");
    v = std::move(fallback);
  }
  record(key, toml::value<std::string>(v));
  return v;
}

std::int64_t table_reader::integer(std::string_view key, std::int64_t fallback, std::int64_t min, std::int64_t max) {
  std::int64_t v = typed<std::int64_t>(key, "an integer").value_or(fallback);
  if (v < min || v > max) {
    fail(key, "must be between " + std::to_string(min) + " and " + std::to_string(max) + ", got " + std::to_string(v));
    v = fallback;
  }
  record(key, toml::value<std::int64_t>(v));
  return v;
}

double table_reader::number(std::string_view key, double fallback, double min, double max) {
  double v = fallback;
  if (const toml::node* n = lookup(key)) {
    if (auto d = n->value_exact<double>()) v = *d;
    else if (auto i = n->value_exact<std::int64_t>()) v = static_cast<double>(*i);
    else fail(key, "expected a number, got " + std::string(type_name(*n)));
  }
  if (!(v >= min && v <= max)) {
    std::ostringstream os;
    os << "must be between " << min << " and " << max << ", got " << v;
    fail(key, os.str());
    v = fallback;
  }
  record(key, toml::value<double>(v));
  return v;
}

bool table_reader::boolean(std::string_view key, bool fallback) {
  bool v = typed<bool>(key, "a boolean (true or false)").value_or(fallback);
  record(key, toml::value<bool>(v));
  return v;
}

std::chrono::milliseconds table_reader::duration(std::string_view key, std::chrono::milliseconds fallback,
                                                 std::chrono::milliseconds min, std::chrono::milliseconds max) {
  auto v = fallback;
  if (auto text = typed<std::string>(key, "a duration string such as \"30s\"")) {
    if (auto d = parse_duration(*text)) {
      v = *d;
      if (v < min || v > max) {
        fail(key, "must be between " + format_duration(min) + " and " + format_duration(max) + ", got " + *text);
        v = fallback;
      }
    } else {
      fail(key, "\"" + *text + "\" is not a duration: use an integer with a unit ms, s, m or h (e.g. \"30s\")");
    }
  }
  record(key, toml::value<std::string>(format_duration(v)));
  return v;
}

std::vector<std::string> table_reader::string_list(std::string_view key, std::vector<std::string> fallback) {
  const toml::node* n = lookup(key);
  std::vector<std::string> out = std::move(fallback);
  if (n) {
    const toml::array* arr = n->as_array();
    if (!arr) {
      fail(key, "expected an array of strings, got " + std::string(type_name(*n)));
    } else {
      out.clear();
      for (std::size_t i = 0; i < arr->size(); ++i) {
        if (auto s = (*arr)[i].value_exact<std::string>()) out.push_back(*s);
        else fail(key, "element " + std::to_string(i) + " is " + std::string(type_name((*arr)[i])) + ", expected a string");
      }
    }
  }
  toml::array rec;
  for (const auto& s : out) rec.push_back(s);
  record(key, std::move(rec));
  return out;
}

std::vector<std::string> table_reader::url_list(std::string_view key, std::vector<std::string> fallback) {
  auto out = string_list(key, std::move(fallback));
  toml::array shown;
  for (const auto& u : out) shown.push_back(redact_userinfo(u));
  record(key, std::move(shown));
  return out;
}

std::vector<std::chrono::milliseconds> table_reader::duration_list(std::string_view key) {
  std::vector<std::chrono::milliseconds> out;
  const toml::node* n = lookup(key);
  if (n) {
    const toml::array* arr = n->as_array();
    if (!arr) {
      fail(key, "expected an array of duration strings, got " + std::string(type_name(*n)));
    } else {
      for (std::size_t i = 0; i < arr->size(); ++i) {
        auto s = (*arr)[i].value_exact<std::string>();
        auto d = s ? parse_duration(*s) : std::nullopt;
        if (d) out.push_back(*d);
        else fail(key, "element " + std::to_string(i) + " is not a duration such as \"30s\"");
      }
    }
  }
  toml::array rec;
  for (auto d : out) rec.push_back(format_duration(d));
  record(key, std::move(rec));
  return out;
}

secret table_reader::secret_value(std::string_view key, bool required) {
  std::string k(key), k_env = k + "_env", k_file = k + "_file";
  auto inline_value = typed<std::string>(k, "a string");
  auto env_name = typed<std::string>(k_env, "a string (the name of an environment variable)");
  auto file_path = typed<std::string>(k_file, "a string (a file path)");
  int given = int(inline_value.has_value()) + int(env_name.has_value()) + int(file_path.has_value());
  secret out;
  if (given > 1) {
    fail(key, "set only one of " + k + ", " + k_env + ", " + k_file);
  } else if (inline_value) {
    if (inline_value->empty() && required) fail(k, "must not be empty");
    out = secret(*inline_value, "inline");
  } else if (env_name) {
    if (const char* v = std::getenv(env_name->c_str()); v && *v) out = secret(v, "env " + *env_name);
    else fail(k_env, "environment variable " + *env_name + " is not set or empty");
  } else if (file_path) {
    std::string error;
    std::string v = read_secret_file(*file_path, error);
    if (!error.empty()) fail(k_file, error);
    else out = secret(std::move(v), "file " + *file_path, *file_path);
  } else if (required) {
    fail(key, "is required (set " + k + ", " + k_env + " or " + k_file + ")");
  }
  if (!out.empty()) record(key, toml::value<std::string>(out.redacted()));
  return out;
}

table_reader table_reader::table(std::string_view key) {
  const toml::node* n = lookup(key);
  const toml::table* sub = nullptr;
  if (n) {
    sub = n->as_table();
    if (!sub) fail(key, "expected a table, got " + std::string(type_name(*n)));
  }
  toml::table* eff = nullptr;
  if (effective_) {
    auto [it, _] = effective_->insert_or_assign(key, toml::table{});
    eff = it->second.as_table();
  }
  return table_reader(sub, key_path(key), *ctx_, eff);
}

std::vector<std::string> table_reader::child_names() {
  std::vector<std::string> names;
  if (table_)
    for (auto& [k, v] : *table_)
      if (v.is_table()) names.emplace_back(k.str());
  return names;
}

std::vector<table_reader> table_reader::array_of_tables(std::string_view key) {
  std::vector<table_reader> out;
  const toml::node* n = lookup(key);
  if (!n) return out;
  const toml::array* arr = n->as_array();
  if (!arr || !arr->is_array_of_tables()) {
    fail(key, "expected an array of tables ([[" + std::string(key) + "]]), got " + std::string(type_name(*n)));
    return out;
  }
  toml::array* eff = nullptr;
  if (effective_) {
    auto [it, _] = effective_->insert_or_assign(key, toml::array{});
    eff = it->second.as_array();
  }
  // Counted from 1, as `--route N` and the docs count routes.
  for (std::size_t i = 0; i < arr->size(); ++i) {
    toml::table* eff_item = nullptr;
    if (eff) {
      eff->push_back(toml::table{});
      eff_item = eff->back().as_table();
    }
    out.emplace_back((*arr)[i].as_table(), key_path(key) + "[" + std::to_string(i + 1) + "]", *ctx_, eff_item);
  }
  return out;
}

void table_reader::finish() {
  if (finished_) return;
  finished_ = true;
  if (!table_) return;
  for (auto& [k, v] : *table_) {
    if (read_keys_.count(k.str())) continue;
    std::string reason = "unknown key";
    std::string_view best;
    std::size_t best_d = 3;  // suggest only close typos
    for (const auto& known : read_keys_) {
      auto d = edit_distance(k.str(), known);
      if (d < best_d) best_d = d, best = known;
    }
    if (!best.empty()) reason += " (did you mean \"" + std::string(best) + "\"?)";
    ctx_->problems.push_back({key_path(k.str()), std::move(reason), static_cast<int>(v.source().begin.line)});
  }
}

}  // namespace archie::config::detail
