#include "store/destination.hpp"

#include <doctest/doctest.h>

using namespace archie::store;

namespace {

object_info version(std::string etag, std::string content_type, std::string generation) {
  object_info o;
  o.etag = std::move(etag);
  o.content_type = std::move(content_type);
  o.user_metadata = {{"generation", std::move(generation)}, {source_etag_metadata, o.etag}};
  return o;
}

}  // namespace

TEST_CASE("a replica with the source's marker and metadata is current") {
  auto wanted = version("d41d8cd98f00b204e9800998ecf8427e", "text/plain", "7");
  auto replica = wanted;
  std::swap(replica.user_metadata[0], replica.user_metadata[1]);  // order does not matter
  CHECK(replica_is_current(replica, wanted, metadata_kept::all));
}

TEST_CASE("the same content put again with other metadata is not current (one ETag, two versions)") {
  auto old_version = version("d41d8cd98f00b204e9800998ecf8427e", "text/plain", "7");
  auto new_version = version("d41d8cd98f00b204e9800998ecf8427e", "image/png", "8");
  CHECK_FALSE(replica_is_current(old_version, new_version, metadata_kept::all));
  auto same_type = version("d41d8cd98f00b204e9800998ecf8427e", "image/png", "7");
  CHECK_FALSE(replica_is_current(same_type, new_version, metadata_kept::all));
  // A local directory keeps only the content type: that is all it can be compared on.
  CHECK(replica_is_current(same_type, new_version, metadata_kept::content_type));
  CHECK_FALSE(replica_is_current(old_version, new_version, metadata_kept::content_type));
}

TEST_CASE("a replica without archie's marker, or with another source ETag, is not current") {
  auto wanted = version("aaaa", "text/plain", "1");
  auto foreign = wanted;
  foreign.user_metadata.pop_back();
  CHECK_FALSE(replica_is_current(foreign, wanted, metadata_kept::all));
  auto older = version("bbbb", "text/plain", "1");
  CHECK_FALSE(replica_is_current(older, wanted, metadata_kept::content_type));
}

TEST_CASE("a replica with the right marker but another size is not current (a local file rewritten in place)") {
  auto wanted = version("aaaa", "text/plain", "1");
  wanted.size = 10;
  auto rewritten = wanted;
  rewritten.size = 14;
  CHECK_FALSE(replica_is_current(rewritten, wanted, metadata_kept::content_type));
  rewritten.size = 10;
  CHECK(replica_is_current(rewritten, wanted, metadata_kept::content_type));
}

TEST_CASE("language, expiry, website redirect and tags are part of what a replica must match") {
  auto wanted = version("aaaa", "text/html", "1");
  wanted.content_language = "de";
  wanted.expires = "Thu, 01 Dec 2030 16:00:00 GMT";
  wanted.website_redirect = "/new-page.html";
  wanted.tagging = "a=1";
  auto replica = wanted;
  CHECK(replica_is_current(replica, wanted, metadata_kept::all));
  for (auto field : {&object_info::content_language, &object_info::expires, &object_info::website_redirect}) {
    auto other = replica;
    other.*field = "x";
    CHECK_FALSE(replica_holds_version(other, wanted, metadata_kept::all));
    CHECK(replica_holds_version(other, wanted, metadata_kept::content_type));  // fs keeps none of them
  }
  auto retagged = replica;
  retagged.tagging = "a=2";
  CHECK(replica_holds_version(retagged, wanted, metadata_kept::all));  // the bytes and headers are there
  CHECK_FALSE(replica_is_current(retagged, wanted, metadata_kept::all));
  CHECK_FALSE(replica_is_current(retagged, wanted, metadata_kept::content_type));  // fs keeps tags
}

TEST_CASE("a replica with another retention or legal hold holds the version but is not current") {
  auto wanted = version("aaaa", "text/plain", "1");
  wanted.lock_mode = "COMPLIANCE";
  wanted.lock_retain_until = "2031-01-01T00:00:00Z";
  wanted.legal_hold = "ON";
  auto replica = wanted;
  CHECK(replica_is_current(replica, wanted, metadata_kept::all));
  replica.legal_hold = "OFF";
  CHECK(replica_holds_version(replica, wanted, metadata_kept::all));
  CHECK_FALSE(replica_is_current(replica, wanted, metadata_kept::all));
  auto no_hold = wanted;
  no_hold.legal_hold.clear();
  replica.legal_hold.clear();
  CHECK(same_object_lock(replica, no_hold));  // OFF and unsaid are the same
  replica.lock_retain_until = "2032-01-01T00:00:00Z";
  CHECK_FALSE(same_object_lock(replica, no_hold));
}
