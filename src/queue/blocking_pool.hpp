#pragma once
// nats.c's synchronous calls (Fetch, AckSync, js_* requests, Flush) block their thread until a
// server reply or timeout. They run here, never on the io_context thread, and the calling
// coroutine resumes on its own executor when the call returns.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <type_traits>
#include <utility>

namespace archie::queue {

/// Not itself a coroutine: GCC 12 mishandles by-value coroutine parameters with non-trivial
/// destructors (a captured shared_ptr was released twice). co_spawn keeps `fn` alive in the
/// spawned frame. Callers should still prefer trivially destructible captures.
template <class Fn>
auto run_blocking(boost::asio::thread_pool& pool, Fn fn) -> boost::asio::awaitable<std::invoke_result_t<Fn&>> {
  using result = std::invoke_result_t<Fn&>;
  return boost::asio::co_spawn(
      pool, [f = std::move(fn)]() mutable -> boost::asio::awaitable<result> { co_return f(); },
      boost::asio::use_awaitable);
}

}  // namespace archie::queue
