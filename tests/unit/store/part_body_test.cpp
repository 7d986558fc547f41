#include "store/part_body.hpp"

#include <doctest/doctest.h>

#include <cstring>

using archie::store::part_body;

namespace {
std::span<const std::byte> bytes_of(const char* s) { return {reinterpret_cast<const std::byte*>(s), std::strlen(s)}; }
}  // namespace

TEST_CASE("a part's digests are the standard ones (FIPS 180-2 and RFC 1321 vectors)") {
  part_body abc(bytes_of("abc"));
  CHECK(abc.sha256_hex() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(abc.content_md5() == "kAFQmDzST7DWlj99KOF/cg==");
  part_body empty(std::span<const std::byte>{});
  CHECK(empty.sha256_hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(empty.content_md5() == "1B2M2Y8AsgTpgAmY7PhCfg==");
}

TEST_CASE("a digest is computed once and shared by every destination that asks") {
  part_body body(bytes_of("the same part for three stores"));
  const std::string* first = &body.sha256_hex();
  CHECK(&body.sha256_hex() == first);  // the kept value, not a new computation
  CHECK(&body.content_md5() == &body.content_md5());
}
