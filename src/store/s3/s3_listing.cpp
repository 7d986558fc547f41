#include "store/s3/s3_listing.hpp"

namespace archie::store::s3 {

async_result<std::vector<listed_entry>> s3_listing::next_page() {
  std::vector<listed_entry> out;
  // A page can come back empty with a continuation token (S3 allows it): keep asking.
  while (out.empty() && !finished_) {
    auto page = co_await client_.list_objects(bucket_, prefix_, token_, listing_page_size);
    if (!page) co_return page.error();
    out.reserve(page->objects.size());
    for (auto& o : page->objects) out.push_back({std::move(o.key), o.size, std::move(o.etag), std::nullopt});
    token_ = std::move(page->next_continuation_token);
    finished_ = token_.empty();
  }
  co_return out;
}

}  // namespace archie::store::s3
