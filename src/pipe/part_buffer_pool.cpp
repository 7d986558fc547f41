#include "pipe/part_buffer_pool.hpp"

#include "metrics/registry.hpp"

#include <boost/asio/experimental/channel.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <prometheus/gauge.h>

#include <algorithm>

namespace archie::pipe {
namespace asio = boost::asio;

namespace {
prometheus::Gauge& in_use_gauge() {
  static auto& g = prometheus::BuildGauge()
                       .Name("archie_buffer_pool_bytes_in_use")
                       .Help("Bytes of part buffers currently lent to transfers")
                       .Register(metrics::registry())
                       .Add({});
  return g;
}
prometheus::Gauge& capacity_gauge() {
  static auto& g = prometheus::BuildGauge()
                       .Name("archie_buffer_pool_bytes_capacity")
                       .Help("Configured part-buffer budget in bytes")
                       .Register(metrics::registry())
                       .Add({});
  return g;
}
}  // namespace

struct part_buffer_pool::waiter {
  waiter(asio::any_io_executor ex, std::size_t n) : bytes(n), wake(ex, 1) {}
  std::size_t bytes;
  bool granted = false;  ///< its bytes are counted in in_use_ from the moment it is woken
  asio::experimental::channel<void(boost::system::error_code)> wake;
};

part_buffer::~part_buffer() { pool_->give_back(data_, size_); }

part_buffer_pool::part_buffer_pool(asio::any_io_executor executor, std::size_t part_size, std::size_t budget_bytes)
    : executor_(std::move(executor)), part_size_(part_size), budget_(std::max(budget_bytes, part_size)) {
  capacity_gauge().Set(static_cast<double>(budget_));
}

part_buffer_pool::~part_buffer_pool() = default;

std::byte* part_buffer_pool::take(std::size_t bytes) {
  ++lent_;
  in_use_gauge().Set(static_cast<double>(in_use_));
  std::byte* data;
  if (bytes == part_size_ && !spare_parts_.empty()) {
    data = spare_parts_.back().release();
    spare_parts_.pop_back();
  } else {
    data = std::make_unique_for_overwrite<std::byte[]>(bytes).release();
  }
  // Memory held is what is lent plus the spares: keep that within the budget too.
  while (!spare_parts_.empty() && in_use_ + spare_parts_.size() * part_size_ > budget_) spare_parts_.pop_back();
  return data;
}

asio::awaitable<shared_part> part_buffer_pool::acquire(std::size_t bytes) {
  bytes = std::clamp<std::size_t>(bytes, 1, part_size_);
  if (waiters_.empty() && in_use_ + bytes <= budget_) {
    in_use_ += bytes;
  } else {
    auto w = std::make_shared<waiter>(executor_, bytes);
    waiters_.push_back(w);
    try {
      co_await w->wake.async_receive(asio::use_awaitable);
    } catch (...) {
      // Cancelled (shutdown, message timeout): either still queued, or woken too late to use
      // what it was promised.
      if (w->granted) {
        in_use_ -= bytes;
        wake_waiters();
      } else {
        std::erase(waiters_, w);
        wake_waiters();  // it may have been the head that held back smaller requests
      }
      throw;
    }
  }
  co_return shared_part(new part_buffer(this, take(bytes), bytes));
}

shared_part part_buffer_pool::try_acquire(std::size_t bytes) {
  bytes = std::clamp<std::size_t>(bytes, 1, part_size_);
  if (!waiters_.empty() || in_use_ + bytes > budget_) return nullptr;
  in_use_ += bytes;
  return shared_part(new part_buffer(this, take(bytes), bytes));
}

shared_part part_buffer_pool::try_acquire_part(std::uint64_t object_size, std::size_t part) {
  const std::uint64_t at = static_cast<std::uint64_t>(part) * part_size_;
  if (at >= object_size) return nullptr;
  return try_acquire(static_cast<std::size_t>(std::min<std::uint64_t>(part_size_, object_size - at)));
}

void part_buffer_pool::give_back(std::byte* data, std::size_t bytes) {
  std::unique_ptr<std::byte[]> block(data);
  if (bytes == part_size_) spare_parts_.push_back(std::move(block));
  --lent_;
  in_use_ -= bytes;
  in_use_gauge().Set(static_cast<double>(in_use_));
  wake_waiters();
}

void part_buffer_pool::wake_waiters() {
  while (!waiters_.empty() && in_use_ + waiters_.front()->bytes <= budget_) {
    auto w = std::move(waiters_.front());
    waiters_.pop_front();
    in_use_ += w->bytes;
    w->granted = true;
    w->wake.try_send(boost::system::error_code{});
  }
}

}  // namespace archie::pipe
