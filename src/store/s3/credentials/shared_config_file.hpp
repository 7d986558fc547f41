#pragma once
// The AWS shared credentials file (~/.aws/credentials, sections "[NAME]") and config file
// (~/.aws/config, sections "[profile NAME]" and "[default]"), as the AWS SDKs read them:
// "key = value" lines, '#' and ';' start comments, indented lines continue a nested
// setting (and are ignored here). credential_provider.cpp follows role_arn + source_profile
// and credential_process; sso_* is not followed.
#include "store/s3/credentials/aws_credentials.hpp"

#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace archie::store::s3 {

/// The settings of `profile` in one file's text; nullopt when the file has no such section.
/// `config_file` selects the config file's section naming.
std::optional<std::map<std::string, std::string>> read_profile_section(std::string_view text,
                                                                       std::string_view profile, bool config_file);

/// Every setting of a profile: the config file's, with the credentials file's on top (the
/// SDKs' precedence); nullopt when neither file has the profile.
std::optional<std::map<std::string, std::string>> profile_settings(std::string_view credentials_text,
                                                                   std::string_view config_text,
                                                                   std::string_view profile);

/// Static keys of a profile: the credentials file wins over the config file for a profile
/// present in both (the SDKs' precedence). Either text may be empty (file absent).
/// nullopt with `error` set when neither holds aws_access_key_id and aws_secret_access_key.
std::optional<aws_credentials> profile_credentials(std::string_view credentials_text, std::string_view config_text,
                                                   std::string_view profile, std::string& error);

}  // namespace archie::store::s3
