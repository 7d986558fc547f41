// The answers of the AWS credential sources (src/store/s3/credentials/): the input is offered
// as an STS AssumeRoleWithWebIdentity answer, as container/IMDS credentials JSON, as an ISO
// 8601 instant and as a shared credentials and config file. Accepted credentials always
// carry a key id and a secret (and STS ones a token and an expiry).
#include "store/s3/credentials/aws_credentials.hpp"
#include "store/s3/credentials/shared_config_file.hpp"
#include "tests/fuzz/fuzz_support.hpp"

using namespace archie::store::s3;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto text = archie::fuzz::as_text(data, size);

  auto sts = parse_sts_answer(text);
  if (sts.creds) {
    FUZZ_REQUIRE(!sts.creds->keys.access_key_id.empty() && !sts.creds->keys.secret_access_key.empty());
    FUZZ_REQUIRE(!sts.creds->keys.session_token.empty() && sts.creds->expiration);
  } else {
    FUZZ_REQUIRE(!sts.error.empty());
  }

  auto json = parse_credentials_json(text);
  if (json.creds) FUZZ_REQUIRE(!json.creds->keys.access_key_id.empty() && !json.creds->keys.secret_access_key.empty());
  else FUZZ_REQUIRE(!json.error.empty());

  (void)parse_iso8601_utc(text);

  std::string error;
  for (const char* profile : {"default", "dev"}) {
    auto p = profile_credentials(text, text, profile, error);
    if (p) FUZZ_REQUIRE(!p->keys.access_key_id.empty() && !p->keys.secret_access_key.empty());
  }
  return 0;
}
