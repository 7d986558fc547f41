// What the GCS requests carry for fields the JSON API lacks, without a server.
#include "store/gcs/gcs_requests.hpp"
#include "store/gcs/gcs_response.hpp"

#include <doctest/doctest.h>

#include <boost/json.hpp>

using namespace archie::store;
using namespace archie::store::gcs;

TEST_CASE("tags, Expires and a website redirect travel in archie's metadata keys and come back as fields") {
  object_info meta;
  meta.content_type = "text/html";
  meta.content_language = "fr";
  meta.expires = "Thu, 01 Dec 2030 16:00:00 GMT";
  meta.website_redirect = "/elsewhere";
  meta.tagging = "a=1&b=x%20y";
  meta.user_metadata = {{"origin", "e2e"}};
  auto doc = boost::json::parse(requests::metadata_json(meta)).as_object();
  CHECK(doc.at("contentLanguage").as_string() == "fr");
  const auto& md = doc.at("metadata").as_object();
  CHECK(md.at("archie-tags").as_string() == "a=1&b=x%20y");
  CHECK(md.at("archie-expires").as_string() == "Thu, 01 Dec 2030 16:00:00 GMT");
  CHECK(md.at("archie-website-redirect").as_string() == "/elsewhere");
  // What a destination reads back is the same object_info.
  auto parsed = parse_object(requests::metadata_json(meta));
  REQUIRE(parsed);
  object_info back = parsed->info;
  requests::lift_archie_metadata(back);
  CHECK(back.tagging == meta.tagging);
  CHECK(back.expires == meta.expires);
  CHECK(back.website_redirect == meta.website_redirect);
  CHECK(back.content_language == "fr");
  CHECK(back.user_metadata == meta.user_metadata);
}

TEST_CASE("removing every tag patches the metadata key to null") {
  auto doc = boost::json::parse(requests::tags_patch_json("")).as_object();
  CHECK(doc.at("metadata").as_object().at("archie-tags").is_null());
  auto set = boost::json::parse(requests::tags_patch_json("k=v")).as_object();
  CHECK(set.at("metadata").as_object().at("archie-tags").as_string() == "k=v");
}

TEST_CASE("a GCS destination's storage class goes in the resource and its KMS key in the insert's query") {
  archie::config::write_options w;
  w.storage_class = "NEARLINE";
  w.kms_key_name = "projects/p/locations/l/keyRings/r/cryptoKeys/k";
  object_info meta;
  auto doc = boost::json::parse(requests::metadata_json(meta, &w)).as_object();
  CHECK(doc.at("storageClass").as_string() == "NEARLINE");
  CHECK_FALSE(boost::json::parse(requests::metadata_json(meta)).as_object().contains("storageClass"));
  preconditions none;
  auto c = requests::start_call("", "b", "k", meta, 10, none, {}, &w);
  CHECK(c.target.find("kmsKeyName=projects%2Fp%2Flocations%2Fl%2FkeyRings%2Fr%2FcryptoKeys%2Fk") != std::string::npos);
}
