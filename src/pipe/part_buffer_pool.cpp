#include "pipe/part_buffer_pool.hpp"

#include "metrics/registry.hpp"

#include <boost/asio/use_awaitable.hpp>

#include <prometheus/gauge.h>

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

part_buffer::~part_buffer() { pool_->give_back(data_); }

part_buffer_pool::part_buffer_pool(asio::any_io_executor executor, std::size_t part_size, std::size_t budget_bytes)
    : part_size_(part_size), count_(std::max<std::size_t>(1, budget_bytes / part_size)), free_(executor, count_) {
  capacity_gauge().Set(static_cast<double>(count_ * part_size_));
}

part_buffer_pool::~part_buffer_pool() = default;

asio::awaitable<shared_part> part_buffer_pool::acquire() {
  std::byte* data = nullptr;
  if (!free_.try_receive([&](boost::system::error_code, std::byte* d) { data = d; })) {
    if (allocated_ < count_) {
      storage_.push_back(std::make_unique_for_overwrite<std::byte[]>(part_size_));
      data = storage_.back().get();
      ++allocated_;
    } else {
      data = co_await free_.async_receive(asio::use_awaitable);
    }
  }
  ++in_use_;
  in_use_gauge().Set(static_cast<double>(in_use_ * part_size_));
  co_return shared_part(new part_buffer(this, data, part_size_));
}

void part_buffer_pool::give_back(std::byte* data) {
  --in_use_;
  in_use_gauge().Set(static_cast<double>(in_use_ * part_size_));
  // Capacity equals the buffer count, so this never fails; a waiter is woken directly.
  free_.try_send(boost::system::error_code{}, data);
}

}  // namespace archie::pipe
