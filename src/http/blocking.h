// Runs a blocking call (a store query) on the blocking pool and resumes the
// calling coroutine on its own event loop with the result, so database
// latency never stalls a loop that serves thousands of connections.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

#include "base/result.h"

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

// The same, answering errc::timeout ("<what> did not answer ...") when the call has not
// returned within `bound`. The call itself cannot be interrupted: one that
// started runs on and its result is dropped; one still queued behind others
// (the pool's threads all held by a database that hangs) is skipped, so
// abandoned requests leave no backlog of work. R is a result<T>.
template <class F>
auto run_blocking(boost::asio::thread_pool& pool, F f, std::chrono::milliseconds bound, std::string what)
    -> boost::asio::awaitable<decltype(f())> {
  namespace asio = boost::asio;
  using R = decltype(f());
  auto ex = co_await asio::this_coro::executor;
  auto initiation = [&pool, ex, bound, what = std::move(what), f = std::move(f)](auto handler) mutable {
    using H = decltype(handler);
    // Shared by the pool's task and the timer; whichever settles it first
    // answers, on the loop.
    struct call {
      explicit call(asio::any_io_executor e, H h) : timer(e), handler(std::move(h)) {}
      asio::steady_timer timer;
      std::optional<H> handler;    // touched on the loop only
      std::atomic<bool> settled{false};
      void answer(R r) {
        auto h = std::move(*handler);
        handler.reset();
        std::move(h)(std::move(r));
      }
    };
    auto c = std::make_shared<call>(ex, std::move(handler));
    c->timer.expires_after(bound);
    c->timer.async_wait([c, bound, what = std::move(what)](boost::system::error_code ec) {
      if (ec || c->settled.exchange(true)) return;
      c->answer(R(error(errc::timeout, fmt::format("{} did not answer within {} ms", what, bound.count()))));
    });
    asio::post(pool, [ex, c, f = std::move(f)]() mutable {
      std::optional<R> r;
      if (!c->settled.load()) r.emplace(f());
      // Also when skipped: the call is then released on the loop, like its timer.
      asio::post(ex, [c, r = std::move(r)]() mutable {
        if (!r || c->settled.exchange(true)) return;
        c->timer.cancel();
        c->answer(std::move(*r));
      });
    });
  };
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(R)>(std::move(initiation),
                                                                                 asio::use_awaitable);
}

}  // namespace feed::http
