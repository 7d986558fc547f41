#include "pipe/source_checksum.hpp"

#include "store/checksum.hpp"

#include <openssl/evp.h>

namespace archie::pipe {

std::optional<source_checksum> source_checksum::for_object(const store::object_info& meta, std::size_t part_size) {
  const std::string& algorithm = meta.checksum_algorithm;
  if (algorithm.empty() || meta.checksum.empty() || meta.checksum.find('-') != std::string::npos || part_size == 0)
    return std::nullopt;
  const std::size_t parts = meta.size == 0 ? 1 : static_cast<std::size_t>((meta.size + part_size - 1) / part_size);
  const bool crc = algorithm == "crc32" || algorithm == "crc32c" || algorithm == "crc64nvme";
  const bool digest = algorithm == "sha1" || algorithm == "sha256";
  if (!crc && !(digest && parts == 1)) return std::nullopt;
  source_checksum check;
  check.algorithm_ = algorithm;
  check.expected_ = meta.checksum;
  check.part_crcs_.assign(parts, 0);
  check.part_lengths_.assign(parts, 0);
  return check;
}

void source_checksum::add(std::size_t index, std::span<const std::byte> bytes) {
  if (index >= part_crcs_.size()) return;
  part_lengths_[index] = bytes.size();
  if (algorithm_ == "crc32c") {
    part_crcs_[index] = store::crc32c(bytes);
  } else if (algorithm_ == "crc32") {
    part_crcs_[index] = store::crc32(bytes);
  } else if (algorithm_ == "crc64nvme") {
    part_crcs_[index] = store::crc64nvme(bytes);
  } else {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(bytes.data(), bytes.size(), out, &len, algorithm_ == "sha1" ? EVP_sha1() : EVP_sha256(), nullptr);
    digest_ = store::base64(std::span<const unsigned char>(out, len));
  }
}

std::string source_checksum::computed() const {
  if (algorithm_ == "sha1" || algorithm_ == "sha256") return digest_;
  std::uint64_t whole = part_crcs_.empty() ? 0 : part_crcs_[0];
  for (std::size_t i = 1; i < part_crcs_.size(); ++i) {
    if (algorithm_ == "crc32c")
      whole = store::crc32c_combine(static_cast<std::uint32_t>(whole), static_cast<std::uint32_t>(part_crcs_[i]),
                                    part_lengths_[i]);
    else if (algorithm_ == "crc32")
      whole = store::crc32_combine(static_cast<std::uint32_t>(whole), static_cast<std::uint32_t>(part_crcs_[i]),
                                   part_lengths_[i]);
    else
      whole = store::crc64nvme_combine(whole, part_crcs_[i], part_lengths_[i]);
  }
  return store::crc_base64(whole, algorithm_ == "crc64nvme" ? 8 : 4);
}

}  // namespace archie::pipe
