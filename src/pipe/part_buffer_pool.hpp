#pragma once
// The memory budget of the copy pipeline. A fixed number of part-sized buffers is lent out
// by handle; a reader that wants another part waits (back-pressure) until some destination
// finishes sending one and the handle returns it. Memory stays at budget whatever the
// object size or the number of objects in flight.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/experimental/channel.hpp>

#include <cstddef>
#include <memory>
#include <span>
#include <vector>

namespace archie::pipe {

class part_buffer_pool;

/// A lent buffer; goes back to the pool when the last copy of the handle is dropped, so one
/// buffer can be shared by every destination of a route.
class part_buffer {
 public:
  std::span<std::byte> bytes() const { return {data_, size_}; }
  std::byte* data() const { return data_; }
  std::size_t capacity() const { return size_; }

 private:
  friend class part_buffer_pool;
  part_buffer(part_buffer_pool* pool, std::byte* data, std::size_t size) : pool_(pool), data_(data), size_(size) {}
  part_buffer_pool* pool_;
  std::byte* data_;
  std::size_t size_;

 public:
  ~part_buffer();
  part_buffer(const part_buffer&) = delete;
  part_buffer& operator=(const part_buffer&) = delete;
};

using shared_part = std::shared_ptr<part_buffer>;

class part_buffer_pool {
 public:
  part_buffer_pool(boost::asio::any_io_executor executor, std::size_t part_size, std::size_t budget_bytes);
  ~part_buffer_pool();

  /// Waits until a buffer is free. Buffers are allocated on first use, never more than the budget.
  boost::asio::awaitable<shared_part> acquire();
  std::size_t part_size() const { return part_size_; }
  std::size_t capacity() const { return count_; }
  std::size_t in_use() const { return in_use_; }

 private:
  friend class part_buffer;
  void give_back(std::byte* data);

  std::size_t part_size_;
  std::size_t count_;
  std::size_t allocated_ = 0;
  std::size_t in_use_ = 0;
  std::vector<std::unique_ptr<std::byte[]>> storage_;
  boost::asio::experimental::channel<void(boost::system::error_code, std::byte*)> free_;
};

}  // namespace archie::pipe
