#include "route/router.hpp"

#include "log/logger.hpp"
#include "metrics/registry.hpp"

#include <pcre2.h>
#include <prometheus/counter.h>

#include <stdexcept>

namespace archie::route {
namespace {

prometheus::Counter& match_errors() {
  static auto& c = prometheus::BuildCounter()
                       .Name("archie_exclude_match_errors_total")
                       .Help("Exclude-pattern matches that failed (limits); the key was treated as excluded")
                       .Register(metrics::registry())
                       .Add({});
  return c;
}

}  // namespace

struct key_filter::impl {
  std::vector<pcre2_code*> codes;
  ~impl() {
    for (auto* c : codes) pcre2_code_free(c);
  }
};

key_filter::key_filter(const std::vector<std::string>& patterns) : impl_(std::make_unique<impl>()) {
  for (const auto& p : patterns) {
    int code = 0;
    PCRE2_SIZE offset = 0;
    // MATCH_INVALID_UTF: a key that is not valid UTF-8 is still matched (its invalid bytes
    // match nothing) instead of making every match fail with an error.
    pcre2_code* re = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(p.c_str()), p.size(),
                                   PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &code, &offset, nullptr);
    if (!re) throw std::invalid_argument("invalid exclude pattern \"" + p + "\" at offset " + std::to_string(offset));
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);  // falls back to the interpreter where JIT is unavailable
    impl_->codes.push_back(re);
  }
}

key_filter::~key_filter() = default;
key_filter::key_filter(key_filter&&) noexcept = default;
bool key_filter::empty() const { return impl_->codes.empty(); }

bool key_filter::matches(std::string_view key) const {
  for (auto* re : impl_->codes) {
    // Match data per call keeps the filter shareable across threads; keys are short.
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(re, nullptr);
    int rc = pcre2_match(re, reinterpret_cast<PCRE2_SPTR>(key.data()), key.size(), 0, 0, md, nullptr);
    pcre2_match_data_free(md);
    if (rc >= 0) return true;
    // Fail closed: a match that could not be decided (match or depth limit hit) counts as
    // excluded, so an exclude_remove rule can never be bypassed by a key crafted to error.
    if (rc != PCRE2_ERROR_NOMATCH) {
      match_errors().Increment();
      log::warn("exclude pattern could not be evaluated; treating the key as excluded",
                {{"pcre2_error", rc}, {"key_bytes", static_cast<std::int64_t>(key.size())}});
      return true;
    }
  }
  return false;
}

router::router(const std::vector<config::route_config>& routes) {
  for (const auto& r : routes) routes_.push_back({r, key_filter(r.exclude_copy), key_filter(r.exclude_remove)});
}

decision router::route(std::string_view bucket, std::string_view key) const {
  decision d;
  for (const auto& r : routes_) {
    const auto& src = r.cfg.source;
    if (src.bucket != bucket || key.substr(0, src.prefix.size()) != src.prefix) continue;
    if (d.route && d.route->cfg.source.prefix.size() >= src.prefix.size()) continue;
    d.route = &r;
  }
  if (d.route) {
    std::string_view rest = key.substr(d.route->cfg.source.prefix.size());
    for (const auto& dst : d.route->cfg.destinations)
      d.targets.push_back({dst.store, dst.bucket, dst.prefix + std::string(rest),
                           dst.deletes == config::deletes_policy::ignore,
                           dst.versions == config::versions_policy::all, &dst.write});
  }
  return d;
}

}  // namespace archie::route
