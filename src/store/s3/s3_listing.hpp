#pragma once
// ListObjectsV2 of a bucket prefix, page by page (continuation tokens).
#include "store/object_listing.hpp"
#include "store/s3/s3_client.hpp"

namespace archie::store::s3 {

class s3_listing final : public object_listing {
 public:
  s3_listing(s3_client& client, std::string bucket, std::string prefix)
      : client_(client), bucket_(std::move(bucket)), prefix_(std::move(prefix)) {}
  async_result<std::vector<listed_entry>> next_page() override;

 private:
  s3_client& client_;
  std::string bucket_, prefix_, token_;
  bool finished_ = false;
};

}  // namespace archie::store::s3
