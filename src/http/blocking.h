// Runs a blocking call (a store query) on the blocking pool and resumes the
// calling coroutine on its own event loop with the result, so database
// latency never stalls a loop that serves thousands of connections.
#pragma once

#include <utility>

#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace feed::http {

//
// Callers pass a named lambda, never a temporary written inside the
// co_await expression: GCC 12 copies such temporaries' captures bitwise into
// the coroutine frame, and a captured std::string then frees frame memory.
template <class F>
auto run_blocking(boost::asio::thread_pool& pool, F f) -> boost::asio::awaitable<decltype(f())> {
  namespace asio = boost::asio;
  using R = decltype(f());
  auto ex = co_await asio::this_coro::executor;
  auto initiation = [&pool, ex, f = std::move(f)](auto handler) mutable {
    asio::post(pool, [ex, f = std::move(f), handler = std::move(handler)]() mutable {
      R r = f();
      asio::post(ex, [handler = std::move(handler), r = std::move(r)]() mutable { std::move(handler)(std::move(r)); });
    });
  };
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(R)>(std::move(initiation),
                                                                                 asio::use_awaitable);
}

}  // namespace feed::http
