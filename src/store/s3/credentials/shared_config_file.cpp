#include "store/s3/credentials/shared_config_file.hpp"

namespace archie::store::s3 {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// "[profile  dev ]" -> "dev" in the config file, "[dev]" -> "dev" in the credentials file;
// the config file's "[default]" is also the default profile.
std::optional<std::string> section_profile(std::string_view header, bool config_file) {
  std::string_view name = trim(header);
  if (!config_file) return std::string(name);
  if (name == "default") return std::string(name);
  if (name.substr(0, 8) == "profile " || name.substr(0, 8) == "profile\t") return std::string(trim(name.substr(8)));
  return std::nullopt;  // [sso-session x], [services y]: not profiles
}

}  // namespace

std::optional<std::map<std::string, std::string>> read_profile_section(std::string_view text,
                                                                       std::string_view profile, bool config_file) {
  std::optional<std::map<std::string, std::string>> out;
  bool inside = false;
  while (!text.empty()) {
    auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    bool indented = !line.empty() && (line.front() == ' ' || line.front() == '\t');
    line = trim(line);
    if (line.empty() || line.front() == '#' || line.front() == ';') continue;
    if (line.front() == '[') {
      auto close = line.find(']');
      auto name = close == std::string_view::npos ? std::nullopt : section_profile(line.substr(1, close - 1), config_file);
      inside = name && *name == profile;
      if (inside && !out) out.emplace();
      continue;
    }
    if (!inside || indented) continue;
    auto eq = line.find('=');
    if (eq == std::string_view::npos) continue;
    // No inline comments: like botocore's parser, "key = a # b" has the value "a # b".
    (*out)[std::string(trim(line.substr(0, eq)))] = std::string(trim(line.substr(eq + 1)));
  }
  return out;
}

std::optional<std::map<std::string, std::string>> profile_settings(std::string_view credentials_text,
                                                                   std::string_view config_text,
                                                                   std::string_view profile) {
  auto merged = read_profile_section(config_text, profile, true);
  auto creds = read_profile_section(credentials_text, profile, false);
  if (!creds) return merged;
  if (!merged) return creds;
  for (auto& [k, v] : *creds) (*merged)[k] = v;
  return merged;
}

std::optional<aws_credentials> profile_credentials(std::string_view credentials_text, std::string_view config_text,
                                                   std::string_view profile, std::string& error) {
  for (auto [text, config_file] : {std::pair{credentials_text, false}, std::pair{config_text, true}}) {
    auto section = read_profile_section(text, profile, config_file);
    if (!section) continue;
    auto get = [&](const char* k) {
      auto it = section->find(k);
      return it == section->end() ? std::string{} : it->second;
    };
    aws_credentials out;
    out.keys.access_key_id = get("aws_access_key_id");
    out.keys.secret_access_key = get("aws_secret_access_key");
    out.keys.session_token = get("aws_session_token");
    if (!out.keys.access_key_id.empty() && !out.keys.secret_access_key.empty()) return out;
  }
  error = "profile \"" + std::string(profile) +
          "\" has no aws_access_key_id and aws_secret_access_key in the shared credentials or config file";
  return std::nullopt;
}

}  // namespace archie::store::s3
