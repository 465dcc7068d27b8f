#include "http/blocking.h"

#include <atomic>
#include <chrono>
#include <optional>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

namespace feed::http {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

struct outcome {
  std::optional<result<int>> got;
  clock::duration took{};
  std::thread::id thread;
};

// Runs `f` on `pool` with `bound` from a coroutine on `ioc`.
template <class F>
void spawn(asio::io_context& ioc, asio::thread_pool& pool, F f, std::chrono::milliseconds bound, outcome& out) {
  asio::co_spawn(
      ioc,
      [&pool, f, bound, &out]() -> asio::awaitable<void> {
        const auto start = clock::now();
        auto call = f;
        out.got = co_await run_blocking(pool, std::move(call), bound, "the test store");
        out.took = clock::now() - start;
        out.thread = std::this_thread::get_id();
      },
      asio::detached);
}

TEST(RunBlocking, AnAnswerWithinTheBoundResumesTheCallerOnItsLoop) {
  asio::io_context ioc;
  asio::thread_pool pool(1);
  outcome out;
  spawn(ioc, pool, [] { return result<int>(7); }, 5000ms, out);
  ioc.run();  // returns at once: the timer was cancelled
  ASSERT_TRUE(out.got && *out.got);
  EXPECT_EQ(**out.got, 7);
  EXPECT_LT(out.took, 1000ms);
  EXPECT_EQ(out.thread, std::this_thread::get_id());
  pool.join();
}

TEST(RunBlocking, ACallPastTheBoundIsAnsweredTimeoutAndItsLateResultDropped) {
  asio::io_context ioc;
  asio::thread_pool pool(1);
  std::atomic<bool> finished{false};
  outcome out;
  spawn(ioc, pool, [&] {
    std::this_thread::sleep_for(400ms);
    finished = true;
    return result<int>(7);
  }, 100ms, out);
  ioc.run();  // returns once answered: the call still runs, holding no work of the loop
  pool.join();
  EXPECT_TRUE(finished);
  ioc.restart();
  ioc.run();  // the late result's hand-back, which drops it
  ASSERT_TRUE(out.got);
  ASSERT_FALSE(*out.got);
  EXPECT_TRUE(out.got->err().is(errc::timeout));
  EXPECT_EQ(out.got->err().message, "the test store did not answer within 100 ms");
  EXPECT_GE(out.took, 100ms);
  EXPECT_LT(out.took, 350ms);
}

// The pool's one thread held (as by a database that hangs): the calls
// queued behind it are answered at their bound and, once abandoned, never
// run, so they leave no backlog.
TEST(RunBlocking, CallsAbandonedWhileQueuedAreSkipped) {
  asio::io_context ioc;
  asio::thread_pool pool(1);
  std::atomic<int> ran{0};
  outcome held;
  spawn(ioc, pool, [&] {
    std::this_thread::sleep_for(500ms);
    ++ran;
    return result<int>(1);
  }, 100ms, held);
  outcome queued[5];
  for (auto& q : queued) spawn(ioc, pool, [&] {
    ++ran;
    return result<int>(2);
  }, 100ms, q);
  ioc.run();
  pool.join();
  ioc.restart();
  ioc.run();
  for (auto& q : queued) {
    ASSERT_TRUE(q.got);
    EXPECT_FALSE(*q.got);
    EXPECT_LT(q.took, 400ms);
  }
  EXPECT_EQ(ran, 1) << "work abandoned in the queue still ran";
}

}  // namespace
}  // namespace feed::http
