#include "store/gcs/gcs_token.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <string>

using namespace archie::store::gcs;
using namespace std::chrono_literals;

namespace {

std::chrono::seconds lifetime_of(const std::string& expires_in) {
  auto t = parse_token_response(R"({"access_token":"ya29.t","expires_in":)" + expires_in + "}");
  REQUIRE(t);
  CHECK(t->value == "ya29.t");
  return t->lifetime;
}

}  // namespace

TEST_CASE("a token answer's expires_in becomes the token's lifetime") {
  CHECK(lifetime_of("3599") == 3599s);
  CHECK(lifetime_of("3599.7") == 3599s);
  CHECK(lifetime_of(R"("3599")") == 3599s);
}

TEST_CASE("a token answer with an absurd expires_in is cut to the longest lifetime archie believes") {
  // 3e99 was cast to int64 unchecked (undefined behaviour).
  CHECK(lifetime_of("3e99") == max_token_lifetime);
  CHECK(lifetime_of("1e300") == max_token_lifetime);
  // Integers that fit would have overflowed the clock arithmetic after the parse.
  CHECK(lifetime_of("9223372036854775807") == max_token_lifetime);
  CHECK(lifetime_of("18446744073709551615") == max_token_lifetime);
  CHECK(lifetime_of(R"("99999999999999999999")") == max_token_lifetime);
  CHECK(lifetime_of("86401") == max_token_lifetime);
}

TEST_CASE("a token answer with a zero, negative or unreadable expires_in gets a one-second lifetime") {
  CHECK(lifetime_of("0") == 1s);
  CHECK(lifetime_of("-3e99") == 1s);
  CHECK(lifetime_of("-9223372036854775808") == 1s);
  CHECK(lifetime_of("0.5") == 1s);
  CHECK(lifetime_of(R"("soon")") == 1s);
  CHECK(lifetime_of(R"("-99999999999999999999")") == 1s);
}

TEST_CASE("a token answer without expires_in is assumed to last five minutes") {
  auto t = parse_token_response(R"({"access_token":"t"})");
  REQUIRE(t);
  CHECK(t->lifetime == unstated_token_lifetime);
  CHECK(lifetime_of("null") == unstated_token_lifetime);
  CHECK_FALSE(parse_token_response(R"({"expires_in":3599})"));
  CHECK_FALSE(parse_token_response("not json"));
}

TEST_CASE("a key file without a private key is refused without quoting the file") {
  std::string error;
  CHECK_FALSE(parse_service_account_key(R"({"type":"service_account","client_email":"a@b"})", error));
  CHECK(error == "no private_key");
  auto key = parse_service_account_key(R"({"client_email":"a@b","private_key":"PEM"})", error);
  REQUIRE(key);
  CHECK(key->token_uri == default_token_uri);
}
