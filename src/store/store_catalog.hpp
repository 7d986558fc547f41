#pragma once
// What the engine asks of the configured stores, and nothing more: the source or destination
// behind a store name, a listing, a ranged read. store_set implements it with real clients;
// the engine's unit tests implement it with fakes (tests/unit/support/fake_stores.hpp).
#include "store/destination.hpp"
#include "store/object_listing.hpp"
#include "store/source.hpp"

#include <cstdint>
#include <memory>
#include <span>
#include <string>

namespace archie::store {

class store_catalog {
 public:
  virtual ~store_catalog() = default;
  /// The source of a store; throws std::out_of_range for a store that cannot be a source.
  virtual source& source_for(const std::string& store) = 0;
  /// The destination of a store; throws std::out_of_range for an unknown store.
  virtual destination& destination_for(const std::string& store) = 0;
  /// A paged listing of bucket/prefix; throws std::out_of_range for an unknown store.
  virtual std::unique_ptr<object_listing> list(const std::string& store, const std::string& bucket,
                                               const std::string& prefix) = 0;
  /// Reads exactly into.size() bytes of bucket/key from `offset` (content comparison);
  /// `if_match` (S3 only, may be empty) pins the version.
  virtual async_result<done> read(const std::string& store, const std::string& bucket, const std::string& key,
                                  std::span<std::byte> into, std::uint64_t offset, const std::string& if_match) = 0;
};

}  // namespace archie::store
