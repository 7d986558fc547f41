#pragma once
// A local destination's <root>/<bucket> walked in S3's key order, page by page, on the
// blocking pool. Each directory's entries are sorted by name with "/" appended to
// subdirectories, so that "a-b" (0x2d) comes before everything under "a/" (0x2f) exactly as
// the keys compare. Symlinks are neither followed nor listed (a replica never holds one);
// archie's temp files are skipped. Memory: one open directory's names per level of depth.
#include "store/fs/beneath.hpp"
#include "store/object_listing.hpp"

#include <boost/asio/thread_pool.hpp>

#include <memory>

namespace archie::store::fs {

class fs_listing final : public object_listing {
 public:
  fs_listing(boost::asio::thread_pool& blocking, std::string store, std::string root, std::string bucket,
             std::string prefix);
  ~fs_listing() override;
  async_result<std::vector<listed_entry>> next_page() override;

  struct walker;

 private:
  boost::asio::thread_pool& blocking_;
  std::string store_, bucket_;
  std::unique_ptr<walker> walker_;
};

}  // namespace archie::store::fs
