#include "support/fake_stores.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace archie::testing {
namespace asio = boost::asio;
using store::async_result;
using store::done;
using store::error_kind;
using store::object_info;

store::store_error injected(error_kind kind, const char* op) {
  return store::store_error{kind, "fake", op, "b", "k", 500, "Injected", "injected by the test", ""};
}

std::vector<std::byte> pattern(std::size_t n, unsigned seed) {
  std::vector<std::byte> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::byte>((i * 31 + 7 + seed * 101) & 0xff);
  return v;
}

// ---- source

void fake_source::put(std::vector<std::byte> bytes, std::string new_etag) {
  exists = true;
  data = std::move(bytes);
  etag = std::move(new_etag);
  if (!version_id.empty()) version_id = "v-" + etag;
  last_modified = "after " + etag;  // a new version is a new modification time
}

object_info fake_source::info() const {
  object_info i;
  i.size = data.size();
  i.etag = etag;
  i.last_modified = last_modified;
  i.version_id = version_id;
  i.user_metadata = user_metadata;
  i.tag_count = tags.empty() ? 0 : static_cast<int>(std::count(tags.begin(), tags.end(), '&')) + 1;
  return i;
}

async_result<std::string> fake_source::tagging(const std::string&, const std::string&, const std::string& version) {
  ++tag_reads;
  versions_asked.push_back(version);
  if (!exists) co_return injected(error_kind::not_found, "GetObjectTagging");
  // Only the current version is kept: an older one was deleted.
  if (!version.empty() && version != version_id) co_return injected(error_kind::not_found, "GetObjectTagging");
  co_return tags;
}

async_result<store::version_history> fake_source::versions(const std::string&, const std::string&) {
  store::version_history h;
  if (exists) h.push_back({version_id, false, true, etag, data.size(), {}});
  co_return h;
}

async_result<store::version_page> fake_source::versions_page(const std::string&, const std::string&,
                                                             const std::string&, const std::string&) {
  store::version_page page;
  if (exists) page.entries.push_back({"k", {version_id, false, true, etag, data.size(), {}}});
  co_return page;
}

async_result<object_info> fake_source::head_version(const std::string& bucket, const std::string& key,
                                                    const std::string& version) {
  if (version != version_id) co_return injected(error_kind::not_found, "HeadObject");
  co_return co_await head(bucket, key);
}

async_result<object_info> fake_source::head(const std::string&, const std::string&) {
  ++heads;
  if (before_head) before_head(*this);
  if (head_fails) co_return injected(*head_fails, "HeadObject");
  if (!exists) co_return injected(error_kind::not_found, "HeadObject");
  co_return info();
}

async_result<object_info> fake_source::read(const std::string&, const std::string&, std::span<std::byte> into,
                                            const store::range_read& range) {
  ++reads;
  if (before_read) before_read(*this);
  if (fail_at_offset && *fail_at_offset == range.offset) co_return injected(fail_kind, "GetObject");
  versions_asked.push_back(range.version_id);
  if (!exists) co_return injected(error_kind::not_found, "GetObject");
  if (!range.version_id.empty() && range.version_id != version_id) co_return injected(error_kind::not_found, "GetObject");
  if (!range.if_match.empty() && range.if_match != etag) co_return injected(error_kind::precondition_failed, "GetObject");
  std::size_t n = into.size();
  if (range.offset + n > data.size()) {
    if (!range.may_end_early) co_return injected(error_kind::permanent, "GetObject");
    n = data.size() - std::min<std::size_t>(data.size(), range.offset);
  }
  if (n) std::memcpy(into.data(), data.data() + range.offset, n);
  bytes_read += n;
  const std::uint64_t answer_end =
      range.rest_to ? std::min<std::uint64_t>(range.rest_to, data.size()) : data.size();
  if (range.rest && keeps_answers_open && range.offset + n < answer_end) {
    *range.rest = std::make_shared<fake_answer>(*this, range.offset + n, answer_end);
    answer_lengths.push_back(answer_end - range.offset);
  } else {
    answer_lengths.push_back(n);
  }
  co_return info();
}

fake_answer::fake_answer(fake_source& s, std::uint64_t from, std::uint64_t to) : src(s), at(from), stop(to) {
  ++src.open_answers;
}
fake_answer::~fake_answer() { --src.open_answers; }

async_result<done> fake_answer::read(std::span<std::byte> into, http::cut_group*) {
  if (src.answer_breaks_at && *src.answer_breaks_at == at) {
    src.answer_breaks_at.reset();
    co_return injected(error_kind::retryable, "GetObject");
  }
  if (at + into.size() > stop) co_return injected(error_kind::permanent, "GetObject");
  std::memcpy(into.data(), src.data.data() + at, into.size());
  src.bytes_read += into.size();
  at += into.size();
  co_return done{};
}

async_result<std::string> fake_source::copy_within(const std::string&, const std::string&, const std::string&,
                                                   const std::string&, const object_info&,
                                                   const config::write_options*) {
  co_return injected(error_kind::permanent, "CopyObject");  // max_server_side_copy() is 0: never asked
}

// ---- destination

namespace {

std::string path_of(const std::string& bucket, const std::string& key) { return bucket + "/" + key; }

struct fake_upload final : store::upload {
  fake_upload(fake_destination& d, std::string p, object_info m) : dest(d), path(std::move(p)), meta(std::move(m)) {}
  fake_destination& dest;
  std::string path;
  object_info meta;

  async_result<done> write_part(int number, std::uint64_t offset, const store::part_body& body) override {
    const std::span<const std::byte> bytes = body.bytes();
    if (number == dest.refuse_part) co_return injected(error_kind::permanent, "UploadPart");
    if (dest.hang) {
      // As http::client does: the request joins the copy's cut group, whose cut ends it.
      asio::steady_timer never(co_await asio::this_coro::executor, std::chrono::hours(1));
      if (!body.cut()) throw std::logic_error("a hanging part needs the copy's cut group");
      if (body.cut()->is_cut()) co_return injected(error_kind::retryable, "UploadPart");
      auto in_group = body.cut()->enter([&never] { never.cancel(); });
      co_await never.async_wait(asio::as_tuple(asio::use_awaitable));
      body.cut()->leave(in_group);
      co_return injected(error_kind::retryable, "UploadPart");
    }
    if (dest.per_part.count()) {
      asio::steady_timer slow(co_await asio::this_coro::executor, dest.per_part);
      co_await slow.async_wait(asio::use_awaitable);
    }
    if (!bytes.empty()) std::memcpy(dest.written.data() + offset, bytes.data(), bytes.size());
    dest.parts.push_back(number);
    co_return done{};
  }
  async_result<done> finish() override {
    dest.finished = true;
    dest.objects[path] = stored_object{dest.written, meta};
    co_return done{};
  }
  asio::awaitable<void> abort() override {
    dest.aborted = true;
    co_return;
  }
  void stop_waiting() override { dest.stopped_waiting = true; }
};

}  // namespace

const stored_object* fake_destination::find(const std::string& bucket, const std::string& key) const {
  auto it = objects.find(path_of(bucket, key));
  return it == objects.end() ? nullptr : &it->second;
}

async_result<std::optional<object_info>> fake_destination::replica_info(const std::string& bucket,
                                                                       const std::string& key) {
  ++infos;
  if (info_fails) co_return injected(*info_fails, "HeadObject");
  const stored_object* o = find(bucket, key);
  if (!o) co_return std::optional<object_info>();
  co_return std::optional<object_info>(o->meta);
}

async_result<std::unique_ptr<store::upload>> fake_destination::begin(const std::string& bucket, const std::string& key,
                                                                      const object_info& meta, std::uint64_t size,
                                                                      std::size_t, const store::upload_options& options) {
  ++begins;
  last_options = options;
  if (begin_fails) co_return injected(*begin_fails, "CreateMultipartUpload");
  written.assign(size, std::byte{0});
  object_info stored = meta;
  stored.size = size;
  co_return std::unique_ptr<store::upload>(std::make_unique<fake_upload>(*this, path_of(bucket, key), stored));
}

async_result<done> fake_destination::remove(const std::string& bucket, const std::string& key) {
  ++removes;
  if (remove_fails) co_return injected(*remove_fails, "DeleteObject");
  objects.erase(path_of(bucket, key));
  co_return done{};
}

async_result<done> fake_destination::set_tagging(const std::string& bucket, const std::string& key, const object_info&,
                                                 const std::string& tagging) {
  ++tag_sets;
  auto it = objects.find(path_of(bucket, key));
  if (it == objects.end()) co_return injected(error_kind::not_found, "PutObjectTagging");
  it->second.meta.tagging = tagging;
  co_return done{};
}

async_result<bool> fake_destination::replace_metadata(const std::string& bucket, const std::string& key,
                                                      const object_info&, const object_info& wanted,
                                                      const config::write_options*) {
  if (!replaces_metadata) co_return false;
  ++metadata_replacements;
  auto it = objects.find(path_of(bucket, key));
  if (it == objects.end()) co_return injected(error_kind::not_found, "CopyObject");
  const std::string tags = it->second.meta.tagging;  // CopyObject keeps the tags
  it->second.meta = wanted;
  it->second.meta.tagging = tags;
  co_return true;
}

async_result<done> fake_destination::check_bucket(const std::string&) { co_return done{}; }

// ---- catalog

std::unique_ptr<store::object_listing> fake_catalog::list(const std::string&, const std::string&, const std::string&) {
  throw std::logic_error("fake_catalog does not list");
}

async_result<done> fake_catalog::read(const std::string&, const std::string&, const std::string&, std::span<std::byte>,
                                      std::uint64_t, const std::string&) {
  throw std::logic_error("fake_catalog does not read content");
}

}  // namespace archie::testing
