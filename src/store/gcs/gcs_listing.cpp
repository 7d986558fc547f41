#include "store/gcs/gcs_listing.hpp"

#include "store/gcs/gcs_response.hpp"

namespace archie::store::gcs {

async_result<std::vector<listed_entry>> gcs_listing::next_page() {
  std::vector<listed_entry> out;
  while (out.empty() && !finished_) {
    auto page = co_await client_.list_objects(bucket_, prefix_, token_, listing_page_size);
    if (!page) co_return page.error();
    out.reserve(page->objects.size());
    // The hex MD5 is what an S3 single-request ETag is (composite objects have none).
    for (auto& o : page->objects)
      out.push_back({std::move(o.name), o.size, base64_to_hex(o.md5_base64), std::nullopt});
    token_ = std::move(page->next_page_token);
    finished_ = token_.empty();
  }
  co_return out;
}

}  // namespace archie::store::gcs
