#include "store/gcs/gcs_client.hpp"

#include "store/range_answer.hpp"

#include <algorithm>

#include "store/gcs/gcs_client_impl.hpp"

// GCC 12 rules (async/gcc12_coroutines.hpp): requests and errors are built by the plain
// functions of gcs_requests; what a co_await borrows is a named object.

namespace archie::store::gcs {
namespace asio = boost::asio;
using namespace requests;

gcs_client::gcs_client(asio::any_io_executor executor, std::string store_name, const config::gcs_store_config& cfg,
                       asio::thread_pool* blocking, std::shared_ptr<http::send_budget> budget)
    : impl_(std::make_unique<impl>(executor, std::move(store_name), cfg, blocking, std::move(budget))) {}
gcs_client::~gcs_client() = default;

const std::string& gcs_client::store_name() const { return impl_->store; }
std::size_t gcs_client::connections_opened() const { return impl_->client.connections_opened(); }
void gcs_client::abort_requests() { impl_->client.abort_all(); }
std::size_t gcs_client::token_fetches() const { return impl_->tokens.fetches(); }
const std::string& gcs_client::credential_source() const { return impl_->tokens.source(); }

async_result<object_metadata> gcs_client::get_object_metadata(const std::string& bucket, const std::string& key) {
  auto c = metadata_call(impl_->base(), bucket, key);
  auto r = co_await impl_->execute(c);
  if (!r) co_return r.error();
  auto m = parse_object(r->body);
  if (!m) co_return impl_->error(c, error_kind::retryable, "BadResponse", "the object resource is not JSON");
  co_return std::move(*m);
}

async_result<object_metadata> gcs_client::get_object_metadata(const std::string& bucket, const std::string& key,
                                                              std::int64_t generation) {
  auto c = generation_metadata_call(impl_->base(), bucket, key, generation);
  auto r = co_await impl_->execute(c);
  if (!r) co_return r.error();
  auto m = parse_object(r->body);
  if (!m) co_return impl_->error(c, error_kind::retryable, "BadResponse", "the object resource is not JSON");
  co_return std::move(*m);
}

async_result<std::vector<object_generation>> gcs_client::list_generations(const std::string& bucket,
                                                                        const std::string& key) {
  std::vector<object_generation> out;
  std::string token;
  do {
    auto c = generations_call(impl_->base(), bucket, key, token);
    auto r = co_await impl_->execute(c);
    if (!r) co_return r.error();
    auto page = parse_generation_page(r->body);
    if (!page) co_return impl_->error(c, error_kind::retryable, "BadResponse", "the listing is not JSON");
    // Names come in order and `key` is the least of those it prefixes: its generations come
    // first, and the first longer name ends them (no need to page through "key/...").
    bool past_key = false;
    for (auto& g : page->generations) {
      if (g.name == key) out.push_back(std::move(g));
      else past_key = true;
    }
    token = past_key ? std::string() : std::move(page->next_page_token);
  } while (!token.empty());
  std::sort(out.begin(), out.end(),
            [](const object_generation& a, const object_generation& b) { return a.meta.generation > b.meta.generation; });
  co_return out;
}

async_result<bool> gcs_client::bucket_versioning(const std::string& bucket) {
  auto c = versioning_call(impl_->base(), bucket);
  auto r = co_await impl_->execute(c);
  if (!r) co_return r.error();
  auto enabled = parse_versioning_enabled(r->body);
  if (!enabled) co_return impl_->error(c, error_kind::retryable, "BadResponse", "the bucket resource is not JSON");
  co_return *enabled;
}

async_result<object_metadata> gcs_client::download(const std::string& bucket, const std::string& key,
                                           std::span<std::byte> into, const download_options& opts) {
  auto c = download_call(impl_->base(), bucket, key, into, opts);
  auto r = co_await impl_->execute(c);
  if (!r) co_return r.error();
  if (!into.empty()) {
    // Only bytes proved to be [offset, offset + into.size()) are used (store/range_answer.hpp).
    auto judged = judge_range_answer(r->status, r->header("content-range"), opts.offset, into.size(), r->body_bytes, false);
    if (judged.error.empty() && judged.more) judged.error = "the server answered a shorter range";
    if (!judged.error.empty()) co_return impl_->error(c, error_kind::retryable, "BadRange", judged.error);
  }
  co_return object_from_headers(r.value());
}

async_result<done> gcs_client::delete_object(const std::string& bucket, const std::string& key, const preconditions& pre) {
  auto c = delete_call(impl_->base(), bucket, key, pre);
  auto r = co_await impl_->execute(c);
  if (!r) co_return r.error();
  co_return done{};
}

async_result<done> gcs_client::set_tags(const std::string& bucket, const std::string& key, const preconditions& pre,
                                         const std::string& tagging) {
  std::string body = tags_patch_json(tagging);
  auto c = patch_call(impl_->base(), bucket, key, pre, std::as_bytes(std::span(body)));
  auto r = co_await impl_->execute(c);
  if (!r) co_return r.error();
  co_return done{};
}

async_result<list_page> gcs_client::list_objects(const std::string& bucket, const std::string& prefix,
                                         const std::string& page_token, int max_results) {
  auto c = list_call(impl_->base(), bucket, prefix, page_token, max_results);
  auto r = co_await impl_->execute(c);
  if (!r) co_return r.error();
  auto page = parse_list_page(r->body);
  if (!page) co_return impl_->error(c, error_kind::retryable, "BadResponse", "the listing is not JSON");
  co_return std::move(*page);
}

async_result<done> gcs_client::probe_bucket(const std::string& bucket) {
  const std::string no_prefix, first_page;
  auto c = list_call(impl_->base(), bucket, no_prefix, first_page, 1);
  auto r = co_await impl_->execute(c);
  if (!r) co_return r.error();
  co_return done{};
}

}  // namespace archie::store::gcs
