#include "http/handlers/loop_waits.h"

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "base/testing/property.h"

namespace feed::http {
namespace {

using namespace std::chrono_literals;
using clock = loop_wait::clock;

// What one waiting coroutine saw.
struct outcome {
  bool ended = false;
  std::optional<int> value;
  clock::time_point at;
  std::thread::id thread;
};

// Waits for an int that `settle` delivers, from the thread it chooses,
// until `deadline`.
template <class Settle>
asio::awaitable<void> wait_for(loop_inbox& inbox, clock::time_point deadline, Settle settle, outcome& out) {
  out.value = co_await complete_before<int>(inbox, deadline, std::move(settle));
  out.ended = true;
  out.at = clock::now();
  out.thread = std::this_thread::get_id();
}

TEST(LoopWaits, ASettlementFromAnotherThreadResumesTheWaiterOnItsLoop) {
  asio::io_context ioc;
  auto inbox = std::make_shared<loop_inbox>(ioc.get_executor());
  outcome out;
  std::thread settler;
  asio::co_spawn(ioc,
                 wait_for(*inbox, clock::now() + 10s,
                          [&](auto complete) { settler = std::thread([complete] { complete(42); }); }, out),
                 asio::detached);
  ioc.run();  // returns once the waiter ended: nothing else is pending
  settler.join();
  ASSERT_TRUE(out.ended);
  EXPECT_EQ(out.value, 42);
  EXPECT_EQ(out.thread, std::this_thread::get_id());
  EXPECT_EQ(asio::use_service<loop_waits>(ioc).pending(), 0u);
}

TEST(LoopWaits, TheDeadlineEndsAWaitAndALateSettlementIsDropped) {
  asio::io_context ioc;
  auto inbox = std::make_shared<loop_inbox>(ioc.get_executor());
  outcome out;
  std::function<void(int)> later;
  const auto start = clock::now();
  asio::co_spawn(ioc, wait_for(*inbox, start + 30ms, [&](auto complete) { later = complete; }, out), asio::detached);
  ioc.run();
  ASSERT_TRUE(out.ended);
  EXPECT_FALSE(out.value);
  EXPECT_GE(out.at - start, 30ms);
  // The settlement after the deadline: drained, and dropped.
  later(7);
  ioc.restart();
  ioc.run();
  EXPECT_FALSE(out.value);
  EXPECT_EQ(asio::use_service<loop_waits>(ioc).pending(), 0u);
}

// Generated waits: deadlines in any order (a store lookup's is shorter than
// the posts' before it), some settled from other threads at random times,
// some never. Each settled before its deadline must end with its value at
// the settlement, each other one with nothing at its deadline, not before,
// and every waiter must end once.
TEST(LoopWaits, GeneratedWaitsEachEndOnceAtTheirSettlementOrDeadline) {
  const auto seed = test_support::property_seed();
  const int rounds = test_support::property_examples(20);
  SCOPED_TRACE(fmt::format("FEED_PROPERTY_SEED={} FEED_PROPERTY_EXAMPLES={}", seed, rounds));
  std::mt19937_64 rng(seed);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  for (int round = 0; round < rounds; ++round) {
    asio::io_context ioc;
    auto inbox = std::make_shared<loop_inbox>(ioc.get_executor());
    const int n = pick(1, 60);
    std::vector<outcome> outs(static_cast<std::size_t>(n));
    std::vector<clock::time_point> deadlines(outs.size());
    std::vector<std::optional<std::chrono::milliseconds>> settle_after(outs.size());
    std::vector<std::thread> settlers;
    std::atomic<int> settled_at_ms[64];
    const auto start = clock::now();
    for (std::size_t i = 0; i < outs.size(); ++i) {
      deadlines[i] = start + std::chrono::milliseconds(pick(0, 90));
      if (pick(0, 2)) settle_after[i] = std::chrono::milliseconds(pick(0, 40));
      settled_at_ms[i] = -1;
      auto settle = [&, i](auto complete) {
        if (!settle_after[i]) return;
        settlers.emplace_back([&, i, complete, after = *settle_after[i]] {
          std::this_thread::sleep_for(after);
          settled_at_ms[i] = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - start).count());
          complete(static_cast<int>(i));
        });
      };
      asio::co_spawn(ioc, wait_for(*inbox, deadlines[i], settle, outs[i]), asio::detached);
    }
    ioc.run();
    for (auto& t : settlers) t.join();
    // Settlements that came after their waits ended are drained here.
    ioc.restart();
    ioc.run();
    for (std::size_t i = 0; i < outs.size(); ++i) {
      SCOPED_TRACE(fmt::format("round {} wait {}", round, i));
      ASSERT_TRUE(outs[i].ended);
      if (outs[i].value) {
        EXPECT_EQ(*outs[i].value, static_cast<int>(i));
        ASSERT_TRUE(settle_after[i]);
        EXPECT_GE(settled_at_ms[i].load(), 0);
      } else {
        // Nothing before the deadline; and a settlement well before it
        // must not have been missed. "Well before" leaves the loop 25 ms to
        // take the settlement in: a loaded machine (an ASan build beside
        // other work) kept it from running for more than 5 ms, and then
        // the expired deadline may come first, rightly.
        EXPECT_GE(outs[i].at, deadlines[i]);
        if (settle_after[i] && settled_at_ms[i] >= 0) {
          EXPECT_GT(start + std::chrono::milliseconds(settled_at_ms[i] + 25), deadlines[i])
              << "settled at " << settled_at_ms[i] << " ms, yet ended by its deadline";
        }
      }
    }
    EXPECT_EQ(asio::use_service<loop_waits>(ioc).pending(), 0u);
  }
}

// Marks its coroutine's frame as destroyed.
struct frame_guard {
  std::shared_ptr<std::atomic<int>> destroyed;
  ~frame_guard() { ++*destroyed; }
};

asio::awaitable<void> wait_forever(loop_inbox& inbox, std::shared_ptr<std::atomic<int>> destroyed,
                                   std::function<void(int)>& keep) {
  frame_guard guard{std::move(destroyed)};
  (void)co_await complete_before<int>(inbox, clock::now() + 1h, [&](auto complete) { keep = complete; });
  ADD_FAILURE() << "resumed after its loop shut down";
}

// An io_context whose shutdown can be called, as the application's loops.
struct event_loop : asio::io_context {
  using asio::io_context::shutdown;
};

// A stop near its deadline: every pending wait ends now, as at its
// deadline, and so does every wait begun after, at once; a settlement that
// comes later is dropped.
TEST(LoopWaits, EndAllEndsEveryWaitNowAndEveryLaterOneAtOnce) {
  asio::io_context ioc;
  auto inbox = std::make_shared<loop_inbox>(ioc.get_executor());
  std::vector<outcome> before(5);
  std::vector<std::function<void(int)>> settle(5);
  const auto start = clock::now();
  for (std::size_t i = 0; i < before.size(); ++i)
    asio::co_spawn(ioc, wait_for(*inbox, start + 60s + i * 1s, [&, i](auto complete) { settle[i] = complete; }, before[i]),
                   asio::detached);
  ioc.poll();
  ASSERT_EQ(asio::use_service<loop_waits>(ioc).pending(), before.size());
  asio::use_service<loop_waits>(ioc).end_all();
  for (const auto& o : before) {
    EXPECT_TRUE(o.ended);
    EXPECT_FALSE(o.value);
  }
  outcome after;
  asio::co_spawn(ioc, wait_for(*inbox, clock::now() + 60s, [](auto) {}, after), asio::detached);
  ioc.run_for(5s);  // returns once the later wait ended: nothing else is pending
  EXPECT_TRUE(after.ended);
  EXPECT_FALSE(after.value);
  EXPECT_LT(clock::now() - start, 5s);
  for (auto& f : settle) f(1);
  ioc.restart();
  ioc.run();
  for (const auto& o : before) EXPECT_FALSE(o.value);
  EXPECT_EQ(asio::use_service<loop_waits>(ioc).pending(), 0u);
}

TEST(LoopWaits, ShuttingTheLoopDownDestroysTheWaitingCoroutines) {
  auto destroyed = std::make_shared<std::atomic<int>>(0);
  std::vector<std::function<void(int)>> late(5);
  event_loop ioc;
  auto inbox = std::make_shared<loop_inbox>(ioc.get_executor());
  for (auto& keep : late) asio::co_spawn(ioc, wait_forever(*inbox, destroyed, keep), asio::detached);
  ioc.run_for(20ms);
  EXPECT_EQ(asio::use_service<loop_waits>(ioc).pending(), late.size());
  EXPECT_EQ(*destroyed, 0);
  // As the application ends its loops (application::end_pending): each
  // frame is destroyed once, by the context's shutdown (the sanitizer
  // builds also check that nothing leaked).
  ioc.shutdown();
  EXPECT_EQ(*destroyed, static_cast<int>(late.size()));
  EXPECT_EQ(asio::use_service<loop_waits>(ioc).pending(), 0u);
  // Settlements after the shutdown are never run.
  for (auto& complete : late) complete(1);
}

}  // namespace
}  // namespace feed::http
