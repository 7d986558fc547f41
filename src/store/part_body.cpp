#include "store/part_body.hpp"

#include "store/checksum.hpp"

#include <openssl/evp.h>

namespace archie::store {

const std::string& part_body::sha256_hex() const {
  if (!sha256_hex_) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(bytes_.data(), bytes_.size(), digest, &len, EVP_sha256(), nullptr);
    static constexpr char hex[] = "0123456789abcdef";
    std::string out(2 * len, '\0');
    for (unsigned int i = 0; i < len; ++i) {
      out[2 * i] = hex[digest[i] >> 4];
      out[2 * i + 1] = hex[digest[i] & 0xF];
    }
    sha256_hex_ = std::move(out);
  }
  return *sha256_hex_;
}

const std::string& part_body::content_md5() const {
  if (!content_md5_) content_md5_ = store::content_md5(bytes_);
  return *content_md5_;
}

}  // namespace archie::store
