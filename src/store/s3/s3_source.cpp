#include "store/s3/s3_source.hpp"

namespace archie::store::s3 {

async_result<object_info> s3_source::head(const std::string& bucket, const std::string& key) {
  co_return co_await client_.head_object(bucket, key);
}

async_result<object_info> s3_source::read(const std::string& bucket, const std::string& key, std::span<std::byte> into,
                                          const range_read& range) {
  get_options opts;
  opts.offset = range.offset;
  opts.if_match = range.if_match;
  opts.version_id = range.version_id;
  opts.may_end_early = range.may_end_early;
  opts.cut = range.cut;
  opts.rest = range.rest;
  opts.rest_to = range.rest_to;
  co_return co_await client_.get_object(bucket, key, into, opts);
}

async_result<std::string> s3_source::copy_within(const std::string& bucket, const std::string& key,
                                                 const std::string& to_bucket, const std::string& to_key,
                                                 const object_info& meta, const config::write_options* write) {
  co_return co_await client_.copy_object(bucket, key, to_bucket, to_key, &meta, write);
}

async_result<version_history> s3_source::versions(const std::string& bucket, const std::string& key) {
  co_return co_await client_.list_object_versions(bucket, key);
}

async_result<std::string> s3_source::versioning(const std::string& bucket) {
  if (auto known = versioning_.get(bucket)) co_return *known;
  auto status = co_await client_.bucket_versioning(bucket);
  if (!status) co_return status.error();
  versioning_.put(bucket, status.value());
  co_return status.value();
}

async_result<version_page> s3_source::versions_page(const std::string& bucket, const std::string& prefix,
                                                    const std::string& key_marker, const std::string& version_marker) {
  co_return co_await client_.list_versions_page(bucket, prefix, key_marker, version_marker);
}

async_result<object_info> s3_source::head_version(const std::string& bucket, const std::string& key,
                                                  const std::string& version_id) {
  co_return co_await client_.head_object(bucket, key, version_id);
}

async_result<std::string> s3_source::tagging(const std::string& bucket, const std::string& key,
                                             const std::string& version_id) {
  co_return co_await client_.get_object_tagging(bucket, key, version_id);
}

}  // namespace archie::store::s3
