// The OAuth side of GCS (src/store/gcs/gcs_token.cpp): the input, read in the format of
// fuzz_support.hpp, is offered as a token answer, as a refusal and as a service-account key
// file. A token's lifetime must land in [1 s, max_token_lifetime] whatever expires_in says.
#include "store/gcs/gcs_token.hpp"
#include "tests/fuzz/fuzz_support.hpp"

using namespace archie::store::gcs;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto r = archie::fuzz::response_from_bytes(archie::fuzz::as_text(data, size));

  if (auto t = parse_token_response(r.body)) {
    FUZZ_REQUIRE(!t->value.empty());
    FUZZ_REQUIRE(t->lifetime >= std::chrono::seconds(1) && t->lifetime <= max_token_lifetime);
  }

  FUZZ_REQUIRE(describe_refusal(r).rfind("HTTP " + std::to_string(r.status), 0) == 0);
  FUZZ_REQUIRE(!oauth_code(r).empty());

  std::string error;
  if (auto key = parse_service_account_key(r.body, error)) {
    FUZZ_REQUIRE(!key->client_email.empty() && !key->private_key.empty() && !key->token_uri.empty());
  } else {
    FUZZ_REQUIRE(!error.empty());
  }
  return 0;
}
