#pragma once
// In-memory stores for unit tests of the pipe and the engine: a source holding one object
// (which a test can change between or during requests, as a concurrent writer would), a
// destination holding objects by key, and a catalog naming them. Faults are exact: a read
// that fails at one offset, a destination that refuses one part, one kind of request, or
// never answers.
#include "store/store_catalog.hpp"

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace archie::testing {

/// A store error as a server would give it, for fault injection.
store::store_error injected(store::error_kind kind, const char* op);

/// n bytes of a repeatable pattern; `seed` makes versions differ.
std::vector<std::byte> pattern(std::size_t n, unsigned seed = 0);

/// A source with one object (any bucket and key name it). Reads honour If-Match: a read
/// pinned to another ETag fails as a changed object does (412).
struct fake_source final : store::source {
  bool exists = true;
  std::vector<std::byte> data;
  std::string etag = "etag-1";
  std::string version_id;  ///< empty: an unversioned source; put() gives a new one when set
  std::string last_modified = "Mon, 07 Dec 2026 06:00:00 GMT";
  std::vector<std::pair<std::string, std::string>> user_metadata;
  std::string tags;  ///< canonical form; HEAD and GET say how many, tagging() returns them
  std::optional<std::uint64_t> fail_at_offset;  ///< a read from this offset fails with fail_kind
  store::error_kind fail_kind = store::error_kind::retryable;
  std::optional<store::error_kind> head_fails;  ///< every HEAD fails so
  /// Run at the start of every HEAD / read, before it is answered: a concurrent writer.
  std::function<void(fake_source&)> before_head, before_read;
  /// Answers may go on (range_read::rest): a read asking so gets the rest of the object, as
  /// far as it asked; with this set, a GET may bring up to 8 parts (parts_per_get).
  bool keeps_answers_open = false;
  /// The open answer breaks (once) when a read from it starts at this offset.
  std::optional<std::uint64_t> answer_breaks_at;
  int open_answers = 0;  ///< answers kept open and not dropped yet
  std::vector<std::uint64_t> answer_lengths;  ///< bytes each read's answer carried, in order
  std::uint64_t bytes_read = 0;
  int heads = 0, reads = 0, tag_reads = 0;
  /// The version every read and tag read asked for ("" for the current one), in order.
  std::vector<std::string> versions_asked;
  std::string name_ = "src";

  /// Writes a new version: other bytes, a new ETag and modification time.
  void put(std::vector<std::byte> bytes, std::string new_etag);
  void remove() { exists = false; }
  store::object_info info() const;

  store::async_result<store::object_info> head(const std::string&, const std::string&) override;
  store::async_result<store::object_info> read(const std::string&, const std::string&, std::span<std::byte> into,
                                               const store::range_read& range) override;
  store::async_result<std::string> copy_within(const std::string&, const std::string&, const std::string&,
                                               const std::string&, const store::object_info&,
                                               const config::write_options*) override;
  std::uint64_t max_server_side_copy() const override { return 0; }
  std::size_t parts_per_get() const override { return keeps_answers_open ? 8 : 1; }
  store::async_result<std::string> tagging(const std::string&, const std::string&, const std::string& version_id) override;
  /// Only the current version (an unversioned source's history).
  store::async_result<store::version_history> versions(const std::string&, const std::string&) override;
  store::async_result<std::string> versioning(const std::string&) override { co_return std::string("Enabled"); }
  store::async_result<store::version_page> versions_page(const std::string&, const std::string&, const std::string&,
                                                        const std::string&) override;
  store::async_result<store::object_info> head_version(const std::string&, const std::string&,
                                                       const std::string& version) override;
  const std::string& name() const override { return name_; }
};

/// The rest of an answer a fake_source kept open: the source's bytes from `at` on.
struct fake_answer final : store::body_stream {
  fake_answer(fake_source& s, std::uint64_t from, std::uint64_t to);
  ~fake_answer() override;
  fake_source& src;
  std::uint64_t at, stop;
  std::uint64_t position() const override { return at; }
  std::uint64_t end() const override { return stop; }
  store::async_result<store::done> read(std::span<std::byte> into, http::cut_group*) override;
};

/// An object a fake destination holds: its bytes and the metadata it was written with.
struct stored_object {
  std::vector<std::byte> bytes;
  store::object_info meta;
};

/// A destination keeping whole objects by "bucket/key"; an upload becomes visible on finish.
struct fake_destination final : store::destination {
  explicit fake_destination(std::string n) : name_(std::move(n)) {}
  std::string name_;
  std::map<std::string, stored_object> objects;  ///< "bucket/key"
  std::vector<std::byte> written;  ///< the last upload's bytes, as far as they came
  std::vector<int> parts;          ///< part numbers written, in order of arrival
  int refuse_part = 0;             ///< 1-based part number refused for good; 0: none
  std::optional<store::error_kind> begin_fails, remove_fails, info_fails;
  std::chrono::milliseconds per_part{0};  ///< a slow destination
  bool hang = false;  ///< parts never answered: a part ends only when its request is cut
  bool finished = false, aborted = false, stopped_waiting = false;
  int begins = 0, removes = 0, infos = 0, tag_sets = 0, metadata_replacements = 0;
  bool replaces_metadata = false;  ///< can rewrite metadata without the bytes (an S3 CopyObject onto itself)
  store::upload_options last_options;  ///< what the last begin() was told

  const stored_object* find(const std::string& bucket, const std::string& key) const;

  store::async_result<std::optional<store::object_info>> replica_info(const std::string& bucket,
                                                                      const std::string& key) override;
  store::metadata_kept keeps() const override { return store::metadata_kept::all; }
  store::async_result<std::unique_ptr<store::upload>> begin(const std::string& bucket, const std::string& key,
                                                            const store::object_info& meta, std::uint64_t size,
                                                            std::size_t, const store::upload_options&) override;
  store::async_result<store::done> remove(const std::string& bucket, const std::string& key) override;
  store::async_result<store::done> set_tagging(const std::string& bucket, const std::string& key,
                                               const store::object_info&, const std::string& tagging) override;
  store::async_result<bool> replace_metadata(const std::string& bucket, const std::string& key,
                                             const store::object_info& replica, const store::object_info& wanted,
                                             const config::write_options*) override;
  store::async_result<store::done> check_bucket(const std::string&) override;
  const std::string& name() const override { return name_; }
};

/// Store names to fakes. Listings and content reads are not faked (the walk has its own tests).
struct fake_catalog final : store::store_catalog {
  std::map<std::string, fake_source*> sources;
  std::map<std::string, fake_destination*> destinations;

  store::source& source_for(const std::string& store) override { return *sources.at(store); }
  store::destination& destination_for(const std::string& store) override { return *destinations.at(store); }
  std::unique_ptr<store::object_listing> list(const std::string&, const std::string&, const std::string&) override;
  store::async_result<store::done> read(const std::string&, const std::string&, const std::string&,
                                        std::span<std::byte>, std::uint64_t, const std::string&) override;
};

}  // namespace archie::testing
