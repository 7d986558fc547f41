#pragma once
// nats.c's synchronous calls (Fetch, AckSync, js_* requests, Flush) and file I/O block their
// thread until done. They run on a thread pool, never on the io_context thread, and the
// calling coroutine resumes on its own executor when the call returns.
//
// The callable must be a named object in the caller's frame, passed as an lvalue (enforced
// below): GCC 12 rule 4 (async/gcc12_coroutines.hpp).
#include <boost/asio/async_result.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <exception>
#include <type_traits>
#include <utility>

namespace archie::async {

template <class FnRef>
auto run_blocking(boost::asio::thread_pool& pool, FnRef&& callable) {
  static_assert(std::is_lvalue_reference_v<FnRef>, "pass a named callable (GCC 12 rule 4, async/gcc12_coroutines.hpp)");
  namespace asio = boost::asio;
  using Fn = std::remove_reference_t<FnRef>;
  using result = std::invoke_result_t<Fn&>;
  Fn* fn = &callable;
  if constexpr (std::is_void_v<result>) {
    return asio::async_initiate<const asio::use_awaitable_t<>&, void(std::exception_ptr)>(
        [&pool](auto handler, Fn* f) {
          auto work = asio::make_work_guard(asio::get_associated_executor(handler));
          asio::post(pool, [h = std::move(handler), f, work = std::move(work)]() mutable {
            std::exception_ptr ep;
            try {
              (*f)();
            } catch (...) {
              ep = std::current_exception();
            }
            auto ex = work.get_executor();
            asio::dispatch(ex, [h = std::move(h), ep]() mutable { std::move(h)(ep); });
          });
        },
        asio::use_awaitable, fn);
  } else {
    return asio::async_initiate<const asio::use_awaitable_t<>&, void(std::exception_ptr, result)>(
        [&pool](auto handler, Fn* f) {
          auto work = asio::make_work_guard(asio::get_associated_executor(handler));
          asio::post(pool, [h = std::move(handler), f, work = std::move(work)]() mutable {
            std::exception_ptr ep;
            result r{};
            try {
              r = (*f)();
            } catch (...) {
              ep = std::current_exception();
            }
            auto ex = work.get_executor();
            asio::dispatch(ex, [h = std::move(h), ep, r = std::move(r)]() mutable { std::move(h)(ep, std::move(r)); });
          });
        },
        asio::use_awaitable, fn);
  }
}

}  // namespace archie::async
