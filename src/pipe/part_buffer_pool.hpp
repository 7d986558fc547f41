#pragma once
// The memory budget of the copy pipeline, in bytes. A buffer is lent by handle, sized to what
// it will hold (a 4 KiB object takes 4 KiB of the budget, not a whole part); a reader that
// wants more than is left waits (back-pressure) until destinations finish sending and the
// handles return their bytes. Waiters are served in order, so a part-sized request is never
// starved by a stream of small ones. Memory stays at budget whatever the object sizes or the
// number of objects in flight.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <cstddef>
#include <cstdint>
#include <deque>
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

  /// Waits until `bytes` (at most part_size) of the budget are free, then lends a buffer of
  /// that size. Cancelling the wait gives nothing back and loses nothing.
  boost::asio::awaitable<shared_part> acquire(std::size_t bytes);
  /// A buffer now, or null when the budget has no room or others already wait (never ahead of them).
  shared_part try_acquire(std::size_t bytes);
  /// try_acquire() for part `part` (from 0) of an object of `object_size` bytes cut in part_size() parts.
  shared_part try_acquire_part(std::uint64_t object_size, std::size_t part);
  std::size_t part_size() const { return part_size_; }
  std::size_t budget() const { return budget_; }
  std::size_t bytes_in_use() const { return in_use_; }
  /// Buffers lent and not yet returned.
  std::size_t in_use() const { return lent_; }

 private:
  friend class part_buffer;
  struct waiter;
  std::byte* take(std::size_t bytes);
  void give_back(std::byte* data, std::size_t bytes);
  void wake_waiters();

  boost::asio::any_io_executor executor_;
  std::size_t part_size_;
  std::size_t budget_;
  std::size_t in_use_ = 0;  ///< bytes lent or promised to a woken waiter
  std::size_t lent_ = 0;
  /// Whole-part blocks are kept for the next part (large objects reuse the same memory, no
  /// page faults per part); smaller ones go back to the allocator.
  std::vector<std::unique_ptr<std::byte[]>> spare_parts_;
  std::deque<std::shared_ptr<waiter>> waiters_;
};

}  // namespace archie::pipe
