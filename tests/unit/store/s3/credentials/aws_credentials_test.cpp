#include "store/s3/credentials/aws_credentials.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <string>

using namespace archie::store::s3;
using namespace std::chrono;

namespace {

// Shaped as the AssumeRoleWithWebIdentity example in the STS API Reference.
const std::string sts_ok = R"(<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>system:serviceaccount:archie:archie</SubjectFromWebIdentityToken>
    <Audience>sts.amazonaws.com</Audience>
    <AssumedRoleUser>
      <Arn>arn:aws:sts::123456789012:assumed-role/archie/session-1</Arn>
      <AssumedRoleId>AROACLKWSDQRAOEXAMPLE:session-1</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <SessionToken>AQoDYXdzEE0a8ANXXXXXXXXNO1ewxE5TijQyp+IEXAMPLE&amp;=</SessionToken>
      <SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY</SecretAccessKey>
      <Expiration>2026-11-29T13:05:00Z</Expiration>
      <AccessKeyId>ASgeIAIOSFODNN7EXAMPLE</AccessKeyId>
    </Credentials>
    <Provider>www.amazon.com</Provider>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata>
    <RequestId>ad4156e9-bce1-11e2-82e6-6b6efEXAMPLE</RequestId>
  </ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>)";

const auto expiry = sys_days{2026y / 11 / 29} + 13h + 5min;

}  // namespace

TEST_CASE("an STS AssumeRoleWithWebIdentity answer gives keys, an unescaped session token and the expiry") {
  auto a = parse_sts_answer(sts_ok);
  REQUIRE(a.creds);
  CHECK(a.creds->keys.access_key_id == "ASgeIAIOSFODNN7EXAMPLE");
  CHECK(a.creds->keys.secret_access_key == "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY");
  CHECK(a.creds->keys.session_token == "AQoDYXdzEE0a8ANXXXXXXXXNO1ewxE5TijQyp+IEXAMPLE&=");
  REQUIRE(a.creds->expiration);
  CHECK(*a.creds->expiration == expiry);
}

TEST_CASE("an STS error document gives its code and message, and no credentials") {
  auto a = parse_sts_answer(R"(<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error><Type>Sender</Type><Code>InvalidIdentityToken</Code><Message>Token is expired</Message></Error>
  <RequestId>1</RequestId></ErrorResponse>)");
  CHECK_FALSE(a.creds);
  CHECK(a.error_code == "InvalidIdentityToken");
  CHECK(a.error.find("Token is expired") != std::string::npos);
}

TEST_CASE("an STS answer without a session token or expiry is refused, naming no secret") {
  std::string no_token = sts_ok;
  no_token.erase(no_token.find("<SessionToken>"), no_token.find("</SessionToken>") + 15 - no_token.find("<SessionToken>"));
  auto a = parse_sts_answer(no_token);
  CHECK_FALSE(a.creds);
  CHECK(a.error.find("wJalr") == std::string::npos);
  std::string bad_expiry = sts_ok;
  bad_expiry.replace(bad_expiry.find("2026-11-29T13:05:00Z"), 20, "tomorrow");
  CHECK_FALSE(parse_sts_answer(bad_expiry).creds);
  CHECK_FALSE(parse_sts_answer("<html>proxy error</html>").creds);
}

TEST_CASE("the container endpoint's JSON gives keys, token and expiry") {
  auto a = parse_credentials_json(R"({"AccessKeyId":"ASIAEXAMPLE","SecretAccessKey":"sk/+x","Token":"tok==",
    "AccountId":"123456789012","Expiration":"2026-11-29T13:05:00Z","RoleArn":"arn:aws:iam::1:role/r"})");
  REQUIRE(a.creds);
  CHECK(a.creds->keys.access_key_id == "ASIAEXAMPLE");
  CHECK(a.creds->keys.secret_access_key == "sk/+x");
  CHECK(a.creds->keys.session_token == "tok==");
  CHECK(*a.creds->expiration == expiry);
}

TEST_CASE("IMDS role credentials with Code Success are accepted; any other Code is an error") {
  auto ok = parse_credentials_json(R"({"Code":"Success","LastUpdated":"2026-11-29T12:00:00Z","Type":"AWS-HMAC",
    "AccessKeyId":"ASIAIMDS","SecretAccessKey":"s","Token":"t","Expiration":"2026-11-29T13:05:00Z"})");
  REQUIRE(ok.creds);
  CHECK(ok.creds->keys.access_key_id == "ASIAIMDS");
  auto bad = parse_credentials_json(R"({"Code":"AssumeRoleUnauthorizedAccess","Message":"no trust"})");
  CHECK_FALSE(bad.creds);
  CHECK(bad.error_code == "AssumeRoleUnauthorizedAccess");
}

TEST_CASE("credentials JSON that is not an object or lacks keys is refused") {
  CHECK_FALSE(parse_credentials_json("not json").creds);
  CHECK_FALSE(parse_credentials_json("[1,2]").creds);
  CHECK_FALSE(parse_credentials_json(R"({"AccessKeyId":"a"})").creds);
  CHECK_FALSE(parse_credentials_json(R"({"AccessKeyId":"a","SecretAccessKey":"s","Expiration":"soon"})").creds);
}

TEST_CASE("ISO 8601 instants in UTC are read with optional fractions and either UTC suffix") {
  CHECK(parse_iso8601_utc("2026-11-29T13:05:00Z") == expiry);
  CHECK(parse_iso8601_utc("2026-11-29T13:05:00.123Z") == expiry);
  CHECK(parse_iso8601_utc("2026-11-29T13:05:00+00:00") == expiry);
  CHECK_FALSE(parse_iso8601_utc("2026-11-29T13:05:00+02:00"));
  CHECK_FALSE(parse_iso8601_utc("2026-02-30T13:05:00Z"));
  CHECK_FALSE(parse_iso8601_utc("2026-11-29 13:05"));
  CHECK_FALSE(parse_iso8601_utc("9999-12-31T23:59:59Z"));  // beyond system_clock's range: refused, no overflow
  CHECK_FALSE(parse_iso8601_utc(""));
}

TEST_CASE("the container credentials URI gets the authorization token in clear text only on the hosts the SDKs allow") {
  CHECK(container_endpoint_allowed(false, "127.0.0.1"));
  CHECK(container_endpoint_allowed(false, "127.1.2.3"));
  CHECK(container_endpoint_allowed(false, "localhost"));
  CHECK(container_endpoint_allowed(false, "::1"));
  CHECK(container_endpoint_allowed(false, "169.254.170.2"));
  CHECK(container_endpoint_allowed(false, "169.254.170.23"));
  CHECK(container_endpoint_allowed(false, "fd00:ec2::23"));
  CHECK(container_endpoint_allowed(true, "credentials.example.com"));
  CHECK_FALSE(container_endpoint_allowed(false, "credentials.example.com"));
  CHECK_FALSE(container_endpoint_allowed(false, "10.0.0.7"));
  CHECK_FALSE(container_endpoint_allowed(false, "127.0.0.1.attacker.example"));
  CHECK_FALSE(container_endpoint_allowed(false, "169.254.169.254"));
}
