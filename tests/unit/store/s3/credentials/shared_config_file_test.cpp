#include "store/s3/credentials/shared_config_file.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace archie::store::s3;

namespace {

const std::string credentials_file = R"(# keys for archie
[default]
aws_access_key_id = AKIADEFAULT
aws_secret_access_key = default/secret

[replica]
aws_access_key_id=AKIAREPLICA
aws_secret_access_key=replica+secret
aws_session_token = token ; with what looks like a comment
)";

const std::string config_file = R"([default]
region = eu-west-1
[profile dev]
aws_access_key_id = AKIADEV
aws_secret_access_key = dev-secret
s3 =
    addressing_style = path
    aws_access_key_id = NESTED
[sso-session corp]
aws_access_key_id = NOTAPROFILE
aws_secret_access_key = x
)";

}  // namespace

TEST_CASE("the credentials file names profiles [NAME] and gives their keys verbatim") {
  std::string error;
  auto c = profile_credentials(credentials_file, "", "replica", error);
  REQUIRE(c);
  CHECK(c->keys.access_key_id == "AKIAREPLICA");
  CHECK(c->keys.secret_access_key == "replica+secret");
  CHECK(c->keys.session_token == "token ; with what looks like a comment");  // no inline comments
  CHECK_FALSE(c->expiration);
}

TEST_CASE("the config file names profiles [profile NAME]; nested settings and other sections are ignored") {
  std::string error;
  auto c = profile_credentials("", config_file, "dev", error);
  REQUIRE(c);
  CHECK(c->keys.access_key_id == "AKIADEV");
  CHECK_FALSE(profile_credentials("", config_file, "corp", error));
  CHECK_FALSE(profile_credentials("", "[dev]\naws_access_key_id = A\naws_secret_access_key = B\n", "dev", error));
}

TEST_CASE("the credentials file wins over the config file for the same profile") {
  std::string error;
  auto c = profile_credentials(credentials_file, "[default]\naws_access_key_id = FROMCONFIG\naws_secret_access_key = c\n",
                               "default", error);
  REQUIRE(c);
  CHECK(c->keys.access_key_id == "AKIADEFAULT");
}

TEST_CASE("a profile with only a region, or no profile at all, gives no credentials and says which profile") {
  std::string error;
  CHECK_FALSE(profile_credentials("", config_file, "default", error));
  CHECK(error.find("\"default\"") != std::string::npos);
  CHECK_FALSE(profile_credentials(credentials_file, config_file, "missing", error));
  CHECK(error.find("\"missing\"") != std::string::npos);
}
