#pragma once
// objects.list of a bucket prefix, page by page (page tokens). GCS lists names in byte order.
#include "store/gcs/gcs_client.hpp"
#include "store/object_listing.hpp"

namespace archie::store::gcs {

class gcs_listing final : public object_listing {
 public:
  gcs_listing(gcs_client& client, std::string bucket, std::string prefix)
      : client_(client), bucket_(std::move(bucket)), prefix_(std::move(prefix)) {}
  async_result<std::vector<listed_entry>> next_page() override;

 private:
  gcs_client& client_;
  std::string bucket_, prefix_, token_;
  bool finished_ = false;
};

}  // namespace archie::store::gcs
