#include "queue/memory/memory_queue.h"

#include <deque>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "base/testing/property.h"

namespace feed {
namespace {

message msg(std::string id) { return message{std::move(id), "u", "c", now_utc(), seq_t{0}}; }

TEST(MemoryQueue, AcknowledgesOnlyOnCommit) {
  memory_queue q(10);
  std::vector<std::error_code> acks;
  q.enqueue(msg("a"), [&](std::error_code ec) { acks.push_back(ec); });
  q.enqueue(msg("b"), [&](std::error_code ec) { acks.push_back(ec); });
  auto b = q.poll(10, std::chrono::milliseconds(0));
  ASSERT_TRUE(b);
  ASSERT_EQ(b->messages.size(), 2u);
  EXPECT_EQ(b->messages[0].id, "a");
  EXPECT_TRUE(acks.empty());
  ASSERT_TRUE(q.commit(*b));
  ASSERT_EQ(acks.size(), 2u);
  EXPECT_FALSE(acks[0]);
  EXPECT_FALSE(acks[1]);
}

TEST(MemoryQueue, OneCommitAnswersEveryBatchWithItsOwnDroppedPositions) {
  memory_queue q(10);
  std::map<std::string, std::error_code> acks;
  for (std::string id : {"a", "b", "c", "d", "e"})
    q.enqueue(msg(id), [&acks, id](std::error_code ec) { acks.emplace(id, ec); });
  std::vector<batch> batches;
  for (std::size_t max : {2, 3}) batches.push_back(std::move(*q.poll(max, std::chrono::milliseconds(0))));
  ASSERT_EQ(batches[1].messages.size(), 3u);
  batches[1].dropped = {1};  // "d": its key was used with other content
  ASSERT_TRUE(q.commit(batches));
  ASSERT_EQ(acks.size(), 5u);
  for (std::string id : {"a", "b", "c", "e"}) EXPECT_FALSE(acks[id]) << id;
  EXPECT_EQ(acks["d"], errc::key_conflict);
  ASSERT_TRUE(q.commit(batches));  // a second release is a no-op
  EXPECT_EQ(acks.size(), 5u);
}

TEST(MemoryQueue, RefusesPastCapacityAtOnce) {
  memory_queue q(2);
  std::error_code third;
  q.enqueue(msg("a"), [](std::error_code) {});
  q.enqueue(msg("b"), [](std::error_code) {});
  q.enqueue(msg("c"), [&](std::error_code ec) { third = ec; });
  EXPECT_EQ(third, errc::queue_full);
  EXPECT_FALSE(q.ready());
  EXPECT_EQ(q.size(), 2u);
}

TEST(MemoryQueue, PollRespectsMaxAndWaitsBoundedly) {
  memory_queue q(10);
  for (int i = 0; i < 5; ++i) q.enqueue(msg(std::to_string(i)), [](std::error_code) {});
  EXPECT_EQ(q.poll(3, std::chrono::milliseconds(0))->messages.size(), 3u);
  EXPECT_EQ(q.poll(3, std::chrono::milliseconds(0))->messages.size(), 2u);
  const auto t0 = std::chrono::steady_clock::now();
  auto empty = q.poll(3, std::chrono::milliseconds(30));
  EXPECT_TRUE(empty->messages.empty());
  EXPECT_FALSE(empty->end_of_stream);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(25));
}

TEST(MemoryQueue, CloseDrainsThenEnds) {
  memory_queue q(10);
  std::error_code late;
  q.enqueue(msg("a"), [](std::error_code) {});
  q.close();
  q.enqueue(msg("b"), [&](std::error_code ec) { late = ec; });
  EXPECT_EQ(late, errc::shutting_down);
  auto b = q.poll(10, std::chrono::milliseconds(0));
  EXPECT_EQ(b->messages.size(), 1u);
  EXPECT_TRUE(q.poll(10, std::chrono::milliseconds(0))->end_of_stream);
}

TEST(MemoryQueue, FailReleasesWithTheError) {
  memory_queue q(10);
  std::error_code got;
  q.enqueue(msg("a"), [&](std::error_code ec) { got = ec; });
  auto b = q.poll(10, std::chrono::milliseconds(0));
  q.fail(*b, errc::unavailable);
  EXPECT_EQ(got, errc::unavailable);
  ASSERT_TRUE(q.commit(*b));  // a second release is a no-op
}

TEST(MemoryQueue, WithdrawTakesBackWhatNoConsumerTook) {
  memory_queue q(10);
  std::vector<std::pair<std::string, std::error_code>> acks;
  auto ack = [&](std::string id) { return [&acks, id](std::error_code ec) { acks.emplace_back(id, ec); }; };
  q.enqueue(msg("a"), ack("a"));
  q.enqueue(msg("b"), ack("b"));
  q.enqueue(msg("c"), ack("c"));
  ASSERT_TRUE(q.withdraw("b"));
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].first, "b");
  EXPECT_EQ(acks[0].second, errc::timeout);
  EXPECT_TRUE(q.known_not_stored(acks[0].second));
  EXPECT_FALSE(q.withdraw("b"));  // once
  EXPECT_EQ(q.size(), 2u);

  auto b = q.poll(1, std::chrono::milliseconds(0));
  ASSERT_EQ(b->messages.size(), 1u);
  EXPECT_EQ(b->messages[0].id, "a");
  EXPECT_FALSE(q.withdraw("a")) << "the worker has it: its outcome is not the queue's to decide";
  ASSERT_TRUE(q.commit(*b));
  auto rest = q.poll(10, std::chrono::milliseconds(0));
  ASSERT_EQ(rest->messages.size(), 1u);
  EXPECT_EQ(rest->messages[0].id, "c");
  ASSERT_TRUE(q.commit(*rest));
  ASSERT_EQ(acks.size(), 3u);
  EXPECT_FALSE(acks[1].second);
  EXPECT_FALSE(acks[2].second);
}

TEST(MemoryQueue, WithdrawTakesEveryWaitingCopyOfAnId) {
  memory_queue q(10);
  int withdrawn = 0;
  for (int i = 0; i < 2; ++i)
    q.enqueue(msg("same"), [&](std::error_code ec) { withdrawn += ec == errc::timeout; });
  q.enqueue(msg("other"), [](std::error_code) {});
  EXPECT_TRUE(q.withdraw("same"));
  EXPECT_EQ(withdrawn, 2);
  EXPECT_EQ(q.size(), 1u);
}

// Generated runs of enqueues (ids from a small set, so that copies of one
// id wait together as identical keyed posts do), withdrawals of any id in
// any order, and polls of any size, against a model FIFO. A withdrawal
// takes every waiting copy of its id and nothing else, says whether it took
// any, and answers each taken waiter with timeout; polls hand out the rest
// in order. Nothing is committed in between, so a polled id is never
// withdrawn again (WithdrawsNothingOnceACopyOfTheIdWasTaken), and the model
// forgets nothing it polled.
TEST(MemoryQueue, WithdrawalsAndPollsAgreeWithAFifoUnderGeneratedOrders) {
  const auto seed = test_support::property_seed();
  std::mt19937_64 rng(seed);
  for (int example = 0; example < test_support::property_examples(100); ++example) {
    const std::size_t capacity = 1 + rng() % 64;
    const int ids = 1 + static_cast<int>(rng() % 40);
    memory_queue q(capacity);
    std::deque<std::pair<std::string, int>> model;  // id, waiter number
    std::map<int, std::error_code> answers;
    std::set<std::string> polled;
    int next_waiter = 0;
    std::vector<batch> held;
    for (int step = 0; step < 400; ++step) {
      const std::string id = "id" + std::to_string(rng() % ids);
      const auto what = rng() % 8;
      const auto where = [&] { return ::testing::Message() << "seed " << seed << " example " << example << " step " << step; };
      if (what < 4) {
        const int waiter = next_waiter++;
        q.enqueue(msg(id), [&answers, waiter](std::error_code ec) { answers.emplace(waiter, ec); });
        if (model.size() < capacity) model.emplace_back(id, waiter);
        else ASSERT_EQ(answers.at(waiter), errc::queue_full) << where();
      } else if (what < 7) {
        std::vector<int> expected;
        if (!polled.contains(id))
          for (const auto& [queued, waiter] : model)
            if (queued == id) expected.push_back(waiter);
        ASSERT_EQ(q.withdraw(id), !expected.empty()) << where();
        std::erase_if(model, [&](const auto& e) { return !polled.contains(id) && e.first == id; });
        for (int waiter : expected) ASSERT_EQ(answers.at(waiter), errc::timeout) << where();
      } else {
        const std::size_t max = 1 + rng() % 8;
        auto b = q.poll(max, std::chrono::milliseconds(0));
        ASSERT_TRUE(b);
        ASSERT_EQ(b->messages.size(), std::min(max, model.size())) << where();
        for (const auto& m : b->messages) {
          ASSERT_EQ(m.id, model.front().first) << where();
          polled.insert(m.id);
          model.pop_front();
        }
        held.push_back(std::move(*b));
      }
      ASSERT_EQ(q.size(), model.size()) << where();
    }
  }
}

// Posts with one Idempotency-Key share an id. When the worker has taken
// one copy, the message may be stored whatever happens to the others: none
// may be withdrawn, or a waiter would be told "not stored" for a stored
// message.
TEST(MemoryQueue, WithdrawsNothingOnceACopyOfTheIdWasTaken) {
  memory_queue q(10);
  std::vector<std::error_code> acks;
  q.enqueue(msg("same"), [&](std::error_code ec) { acks.push_back(ec); });
  auto taken = q.poll(1, std::chrono::milliseconds(0));
  ASSERT_EQ(taken->messages.size(), 1u);
  q.enqueue(msg("same"), [&](std::error_code ec) { acks.push_back(ec); });
  EXPECT_FALSE(q.withdraw("same"));
  EXPECT_TRUE(acks.empty());
  EXPECT_EQ(q.size(), 1u) << "the waiting copy stays, and is stored with the other";
  // Past the commit the queue no longer knows; the post handler's record
  // of the key (inflight_keys::stored) answers for that case.
  ASSERT_TRUE(q.commit(*taken));
  auto rest = q.poll(10, std::chrono::milliseconds(0));
  ASSERT_EQ(rest->messages.size(), 1u);
  ASSERT_TRUE(q.commit(*rest));
  EXPECT_EQ(acks, (std::vector<std::error_code>{{}, {}}));
}

TEST(QueueWriter, ByDefaultOnlyARefusalIsKnownNotStored) {
  struct broker final : queue_writer {
    void enqueue(message, enqueue_done done) override { done({}); }
    result<void> ready() override { return {}; }
  } b;
  EXPECT_FALSE(b.withdraw("x"));
  EXPECT_TRUE(b.known_not_stored(errc::queue_full));
  EXPECT_FALSE(b.known_not_stored(errc::timeout));
  EXPECT_FALSE(b.known_not_stored(errc::unavailable));
}

}  // namespace
}  // namespace feed
