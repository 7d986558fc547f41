#pragma once
// The zero-copy multipart pipe. The source object is read once, in order, into buffers from
// the bounded pool: each GET asks for as many parts as there are buffers and idle workers to
// take them at once, so its answer is read without a pause (a new GET from where it stopped
// if the answer breaks; ranged GETs in parallel where the source keeps no answer open).
// Each filled buffer is handed to
// every destination at once and returns to the pool when the last one has sent it. A
// destination that fails is aborted and dropped; the others carry on, so a redelivery only
// redoes what is missing.
#include "pipe/part_buffer_pool.hpp"
#include "pipe/read_ahead.hpp"
#include "store/destination.hpp"
#include "store/source.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <optional>
#include <string>
#include <vector>

namespace archie::pipe {

struct copy_target {
  store::destination* dest = nullptr;
  std::string bucket;
  std::string key;
  const config::write_options* write = nullptr;  ///< how this destination writes (null: defaults)
};

struct copy_request {
  store::source* source = nullptr;
  std::string bucket;
  std::string key;
  store::object_info meta;  ///< source HEAD: size, ETag (every GET is If-Match on it), metadata to write
  std::vector<copy_target> targets;
  read_ahead ahead;  ///< of the version `meta` describes
  std::size_t parts_in_flight = 8;
  /// A redelivery: an earlier attempt may have left open multipart uploads to clean up.
  bool earlier_attempt_possible = true;
};

struct copy_report {
  std::optional<store::store_error> source_error;
  std::vector<std::optional<store::store_error>> target_errors;  ///< per target, same order
  bool ok() const;
  /// The error that decides the message outcome (source first, then the first target's).
  const store::store_error* first_error() const;
};

/// Takes `request.ahead` (the caller's references are dropped as the copy starts: a part
/// held twice would keep the buffer from the pool until the whole copy ends, and copies
/// holding their first parts while they wait for their second could take the whole budget).
boost::asio::awaitable<copy_report> fan_out_copy(boost::asio::any_io_executor executor, part_buffer_pool& pool,
                                                 copy_request& request);

}  // namespace archie::pipe
