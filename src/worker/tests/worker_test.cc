#include "worker/worker.h"

#include <filesystem>
#include <functional>
#include <mutex>
#include <random>
#include <thread>
#include <utility>

#include <gtest/gtest.h>

#include "base/testing/property.h"
#include "model/message_id.h"
#include "queue/memory/memory_queue.h"
#include "store/sqlite/sqlite_store.h"

namespace feed {
namespace {

// Forwards to a real store. `before_insert` runs first on every insert, on
// the worker's store thread, and may fail it (an outage) or hold it (a slow
// transaction).
class hooked_store final : public store {
 public:
  using hook = std::function<result<void>(std::span<const message>)>;
  hooked_store(store& inner, hook before_insert) : inner_(inner), before_insert_(std::move(before_insert)) {}
  result<insert_report> insert_batch(std::vector<message>& b) override {
    if (auto r = before_insert_(b); !r) return r.err();
    return inner_.insert_batch(b);
  }
  result<std::vector<message>> read(const read_query& q) override { return inner_.read(q); }
  result<seq_t> max_seq() override { return inner_.max_seq(); }
  result<void> ping() override { return inner_.ping(); }
  result<std::optional<message>> find(const std::string& id) override { return inner_.find(id); }
  result<void> write_status(std::chrono::milliseconds l) override { return inner_.write_status(l); }

 private:
  store& inner_;
  const hook before_insert_;
};

// Fails the first `n` inserts, as a database that is down for a while does.
hooked_store::hook fail_first(int n) {
  return [left = n](std::span<const message>) mutable -> result<void> {
    if (left == 0) return {};
    --left;
    return error(errc::unavailable, "injected outage");
  };
}

class recording_sink final : public processed_sink {
 public:
  result<void> send(std::span<const message> stored) override {
    std::lock_guard lock(mu);
    got.insert(got.end(), stored.begin(), stored.end());
    return {};
  }
  std::mutex mu;
  std::vector<message> got;
};

class Worker : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("feed-worker-test-" + random_message_id());
    db_ = std::move(*sqlite_store::open({dir_ / "feed.db", "NORMAL"}));
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Queues n messages (content "0".."n-1"), each counting its success in acked.
  static void fill(memory_queue& q, int n, std::atomic<int>& acked) {
    for (int i = 0; i < n; ++i)
      q.enqueue(message{random_message_id(), "u", std::to_string(i), now_utc(), seq_t{0}}, [&](std::error_code ec) {
        if (!ec) ++acked;
      });
  }

  // Starts the worker, queues one message (the first batch, which the
  // tests hold in the store), then three more 50 ms apart, the first of
  // them `first_gap` after it; then drains the closed queue.
  static void one_then_three(memory_queue& q, worker& w, std::atomic<int>& acked,
                             std::chrono::milliseconds first_gap) {
    w.start();
    fill(q, 1, acked);
    std::this_thread::sleep_for(first_gap);
    for (int i = 0; i < 3; ++i) {
      fill(q, 1, acked);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    q.close();
    w.stop(std::chrono::steady_clock::now() + std::chrono::seconds(10));
  }

  // All n acknowledged and handed to the sink in seq order 1..n.
  static void expect_stored_in_order(const std::atomic<int>& acked, const recording_sink& sink, int n) {
    EXPECT_EQ(acked, n);
    ASSERT_EQ(sink.got.size(), static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) EXPECT_EQ(sink.got[i].seq.value(), i + 1);
  }

  // Runs the worker until it has drained the closed queue.
  static void drain(memory_queue& q, worker& w) {
    w.start();
    q.close();
    w.stop(std::chrono::steady_clock::now() + std::chrono::seconds(10));
  }

  std::filesystem::path dir_;
  std::unique_ptr<sqlite_store> db_;
};

TEST_F(Worker, StoresPublishesThenAcknowledgesInOrder) {
  memory_queue q(1000);
  recording_sink sink;
  worker w(q, *db_, sink, {.max_batch = 7});
  std::atomic<int> acked{0};
  fill(q, 50, acked);
  drain(q, w);
  EXPECT_EQ(acked, 50);
  ASSERT_EQ(sink.got.size(), 50u);
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(sink.got[i].seq.value(), i + 1);
    EXPECT_EQ(sink.got[i].content, std::to_string(i));
  }
}

TEST_F(Worker, RetriesWhileTheStoreIsDownAndLosesNothing) {
  memory_queue q(1000);
  hooked_store flaky(*db_, fail_first(5));
  recording_sink sink;
  worker w(q, flaky, sink, {.max_batch = 10, .retry_initial = std::chrono::milliseconds(1)});
  std::atomic<int> acked{0};
  fill(q, 30, acked);
  drain(q, w);
  EXPECT_EQ(acked, 30);
  EXPECT_EQ(db_->max_seq()->value(), 30);
  EXPECT_EQ(w.stats().retries.load(), 5u);
}

TEST_F(Worker, GivesUpAtTheDeadlineAndReportsTheFailure) {
  memory_queue q(1000);
  hooked_store flaky(*db_, fail_first(1'000'000));
  recording_sink sink;
  worker w(q, flaky, sink, {.retry_initial = std::chrono::milliseconds(1), .retry_max = std::chrono::milliseconds(5)});
  std::error_code got;
  std::atomic<bool> called{false};
  q.enqueue(message{random_message_id(), "u", "x", now_utc(), seq_t{0}}, [&](std::error_code ec) {
    got = ec;
    called = true;
  });
  w.start();
  q.close();
  w.stop(std::chrono::steady_clock::now() + std::chrono::milliseconds(100));
  EXPECT_TRUE(called);
  EXPECT_EQ(got, errc::unavailable);
  EXPECT_TRUE(sink.got.empty());
}

// A back-off longer than what is left of the stop: it ends at the deadline.
TEST_F(Worker, ABackOffEndsAtTheStopDeadline) {
  memory_queue q(1000);
  hooked_store flaky(*db_, fail_first(1'000'000));
  recording_sink sink;
  worker w(q, flaky, sink, {.retry_initial = std::chrono::seconds(5), .retry_max = std::chrono::seconds(5)});
  std::atomic<bool> called{false};
  q.enqueue(message{random_message_id(), "u", "x", now_utc(), seq_t{0}}, [&](std::error_code) { called = true; });
  w.start();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the first attempt failed; 5 s of back-off began
  q.close();
  const auto start = std::chrono::steady_clock::now();
  w.stop(start + std::chrono::milliseconds(200));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1500));
  EXPECT_TRUE(called);
}

// Holds the first batch's publication until the store is past that batch:
// only a worker that stores the next batch meanwhile lets it through.
class gated_sink final : public processed_sink {
 public:
  explicit gated_sink(store& db) : db_(db) {}
  result<void> send(std::span<const message> stored) override {
    if (first_) {
      first_ = false;
      const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
      while (std::chrono::steady_clock::now() < until) {
        if (db_.max_seq()->value() > stored.back().seq.value()) {
          overlapped = true;
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    }
    got.insert(got.end(), stored.begin(), stored.end());
    return {};
  }
  bool overlapped = false;
  std::vector<message> got;

 private:
  store& db_;
  bool first_ = true;
};

TEST_F(Worker, StoresTheNextBatchWhileTheLastIsPublished) {
  memory_queue q(1000);
  gated_sink sink(*db_);
  worker w(q, *db_, sink, {.max_batch = 5});
  std::atomic<int> acked{0};
  fill(q, 20, acked);
  drain(q, w);
  EXPECT_TRUE(sink.overlapped);
  ASSERT_EQ(sink.got.size(), 20u);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(sink.got[i].seq.value(), i + 1);
}

// Holds the first insert until more than that batch has left the queue
// (which held `total` messages): only a worker that polls while a batch is
// being stored lets it through.
hooked_store::hook hold_first_until_polled_past(const memory_queue& q, std::size_t total, bool& overlapped) {
  return [&q, total, &overlapped, first = true](std::span<const message> b) mutable -> result<void> {
    if (!std::exchange(first, false)) return {};
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (std::chrono::steady_clock::now() < until) {
      if (q.size() + b.size() < total) {
        overlapped = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return {};
  };
}

TEST_F(Worker, PollsTheNextBatchWhileOneIsStored) {
  memory_queue q(1000);
  bool overlapped = false;  // written on the store thread, read after it is joined
  hooked_store gated(*db_, hold_first_until_polled_past(q, 20, overlapped));
  recording_sink sink;
  worker w(q, gated, sink, {.max_batch = 5});
  std::atomic<int> acked{0};
  fill(q, 20, acked);
  drain(q, w);
  EXPECT_TRUE(overlapped);
  EXPECT_EQ(acked, 20);
  ASSERT_EQ(sink.got.size(), 20u);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(sink.got[i].seq.value(), i + 1);
}

// The API refuses most reuses of an Idempotency-Key with other content; the
// ones that reach the store (two instances at once, a lookup that ran out of
// time) are counted, and the in-process queue answers them key_conflict.
TEST_F(Worker, CountsAndRefusesAKeyReusedWithOtherContent) {
  memory_queue q(100);
  recording_sink sink;
  worker w(q, *db_, sink, {});
  const auto id = message_id_for_key("u", "key-1");
  std::atomic<int> acked{0}, refused{0};
  auto count = [&](std::error_code ec) {
    acked += !ec;
    refused += ec == errc::key_conflict;
  };
  q.enqueue(message{id, "u", "first", now_utc(), seq_t{0}}, count);
  q.enqueue(message{id, "u", "first", now_utc(), seq_t{0}}, count);   // an identical retry
  q.enqueue(message{id, "u", "second", now_utc(), seq_t{0}}, count);  // the conflict
  q.enqueue(message{random_message_id(), "u", "unkeyed", now_utc(), seq_t{0}}, count);
  drain(q, w);
  EXPECT_EQ(acked, 3);
  EXPECT_EQ(refused, 1);
  EXPECT_EQ(w.stats().idempotency_conflicts.load(), 1u);
  auto stored = db_->find(id);
  ASSERT_TRUE(stored && stored->has_value());
  EXPECT_EQ((*stored)->content, "first");
}

// Each conflict is answered at its own position; the other posts of the
// batch, before and after it, are stored and answered as usual.
TEST_F(Worker, RefusesEachConflictAtItsPosition) {
  memory_queue q(100);
  recording_sink sink;
  worker_options opts;
  opts.max_batch = 1000;
  std::vector<std::error_code> answers(6);
  for (int wave = 0; wave < 2; ++wave)
    for (int i = 0; i < 3; ++i) {
      const auto key = "key-" + std::to_string(i);
      const auto content = wave == 0 ? "first " + key : (i == 1 ? "first " + key : "other " + key);
      q.enqueue(message{message_id_for_key("u", key), "u", content, now_utc(), seq_t{0}},
                [&answers, n = wave * 3 + i](std::error_code ec) { answers[n] = ec; });
    }
  worker w(q, *db_, sink, opts);
  drain(q, w);
  const std::error_code ok{}, conflict = errc::key_conflict;
  EXPECT_EQ(answers, (std::vector<std::error_code>{ok, ok, ok, conflict, ok, conflict}));
}

// A batch holding both an id stored by an earlier batch and an id repeated
// within it: the store reports the batch as given beside the batch as
// stored, and each conflict is found at its own position; the sink gets the
// batch as stored, duplicates included, in seq order.
TEST_F(Worker, RefusesConflictsWithStoredAndRepeatedIds) {
  const auto stored_id = message_id_for_key("u", "stored"), repeated_id = message_id_for_key("u", "repeated");
  std::vector<message> earlier{message{stored_id, "u", "first", now_utc(), seq_t{0}}};
  ASSERT_TRUE(db_->insert_batch(earlier));
  memory_queue q(100);
  recording_sink sink;
  const std::vector<message> posts{
      {stored_id, "u", "other", now_utc(), seq_t{0}},          // conflicts with the stored one
      {repeated_id, "u", "one", now_utc(), seq_t{0}},          // new
      {random_message_id(), "u", "unkeyed", now_utc(), seq_t{0}},
      {repeated_id, "u", "two", now_utc(), seq_t{0}},          // conflicts with the one before it
      {stored_id, "u", "first", now_utc(), seq_t{0}},          // an identical retry
  };
  std::vector<std::error_code> answers(posts.size(), make_error_code(errc::unavailable));
  for (std::size_t i = 0; i < posts.size(); ++i)
    q.enqueue(posts[i], [&answers, i](std::error_code ec) { answers[i] = ec; });
  worker w(q, *db_, sink, {.max_batch = 1000});
  drain(q, w);
  const std::error_code ok{}, conflict = errc::key_conflict;
  EXPECT_EQ(answers, (std::vector<std::error_code>{conflict, ok, ok, conflict, ok}));
  EXPECT_EQ(w.stats().idempotency_conflicts.load(), 2u);
  // Rows added: "one" and "unkeyed". The retry and the conflicts add none,
  // though the sink gets every copy (feed_worker_stored_total counted 5).
  EXPECT_EQ(w.stats().stored.load(), 2u);
  std::vector<std::pair<std::int64_t, std::string>> got;
  for (const auto& m : sink.got) got.emplace_back(m.seq.value(), m.content);
  EXPECT_EQ(got, (std::vector<std::pair<std::int64_t, std::string>>{
                     {1, "first"}, {1, "first"}, {2, "one"}, {2, "one"}, {3, "unkeyed"}}));
}

std::size_t one(int) { return 1; }

TEST(Handoff, KeepsOrderAndEndsOnceClosedAndEmpty) {
  handoff<int> h(8);
  for (int i = 0; i < 5; ++i) h.push(i);
  h.close();
  EXPECT_EQ(h.pop_up_to(2, one), (std::vector<int>{0, 1}));
  EXPECT_EQ(h.pop_up_to(100, one), (std::vector<int>{2, 3, 4}));
  EXPECT_TRUE(h.pop_up_to(100, one).empty());
}

TEST(Handoff, PushWaitsWhileFull) {
  handoff<int> h(2);
  h.push(1);
  h.push(2);
  std::atomic<bool> third_in{false};
  std::thread producer([&] {
    h.push(3);
    third_in = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(third_in);  // bounded: the third item waits for room
  EXPECT_EQ(h.pop_up_to(1, one), std::vector<int>{1});
  producer.join();
  EXPECT_TRUE(third_in);
  EXPECT_EQ(h.pop_up_to(100, one), (std::vector<int>{2, 3}));
}

TEST(Handoff, PopUpToTakesWhatFitsAndAlwaysTheFirst) {
  handoff<int> h(8);
  for (int v : {5, 1, 2, 3}) h.push(v);
  const auto self = [](int v) { return static_cast<std::size_t>(v); };
  EXPECT_EQ(h.pop_up_to(4, self), std::vector<int>{5});  // the first, even if over the budget
  EXPECT_EQ(h.pop_up_to(4, self), (std::vector<int>{1, 2}));
  h.close();
  EXPECT_EQ(h.pop_up_to(100, self), std::vector<int>{3});
  EXPECT_TRUE(h.pop_up_to(100, self).empty());
}

// Holds the first insert for a while and records the size of every insert.
hooked_store::hook hold_first_and_record_sizes(std::vector<std::size_t>& sizes) {
  return [&sizes](std::span<const message> b) -> result<void> {
    sizes.push_back(b.size());
    if (sizes.size() == 1) std::this_thread::sleep_for(std::chrono::milliseconds(300));
    return {};
  };
}

// Batches that queue up behind a slow transaction are stored together, so
// the store catches up in one round trip instead of one per batch.
TEST_F(Worker, StoresBatchesThatWaitedTogether) {
  memory_queue q(1000);
  std::vector<std::size_t> sizes;  // written on the store thread, read after it is joined
  hooked_store slow(*db_, hold_first_and_record_sizes(sizes));
  recording_sink sink;
  worker w(q, slow, sink, {});
  std::atomic<int> acked{0};
  one_then_three(q, w, acked, std::chrono::milliseconds(50));  // the three polled as separate batches
  expect_stored_in_order(acked, sink, 4);
  EXPECT_EQ(sizes.front(), 1u);
  EXPECT_LT(sizes.size(), 4u) << "every waiting batch got its own transaction";
}

// Without poll_ahead, what arrives while a batch is stored stays in the
// queue (where a timed-out post can still be withdrawn) and comes out as one
// batch when the store stage asks for the next.
TEST_F(Worker, WithoutPollAheadWhatArrivesDuringAStoreComesOutAsOneBatch) {
  memory_queue q(1000);
  std::vector<std::size_t> sizes;  // written on the store thread, read after it is joined
  std::vector<std::size_t> queued_during_hold;
  hooked_store slow(*db_, [&](std::span<const message> b) -> result<void> {
    sizes.push_back(b.size());
    if (sizes.size() == 1) {
      for (int i = 0; i < 6; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        queued_during_hold.push_back(q.size());
      }
    }
    return {};
  });
  recording_sink sink;
  worker w(q, slow, sink, {.poll_ahead = false});
  std::atomic<int> acked{0};
  one_then_three(q, w, acked, std::chrono::milliseconds(30));
  expect_stored_in_order(acked, sink, 4);
  EXPECT_EQ(sizes, (std::vector<std::size_t>{1, 3}));
  // Nothing left the queue while the first batch was stored.
  ASSERT_FALSE(queued_during_hold.empty());
  EXPECT_EQ(queued_during_hold.back(), 3u);
  for (std::size_t i = 1; i < queued_during_hold.size(); ++i)
    EXPECT_GE(queued_during_hold[i], queued_during_hold[i - 1]);
}

// Counts the batches in each commit the worker asks for.
class counting_reader final : public queue_reader {
 public:
  explicit counting_reader(memory_queue& q) : q_(q) {}
  result<batch> poll(std::size_t max, std::chrono::milliseconds wait) override { return q_.poll(max, wait); }
  result<void> commit(std::span<const batch> batches) override {
    commits.push_back(batches.size());
    return q_.commit(batches);
  }
  void fail(const batch& b, std::error_code why) override { q_.fail(b, why); }
  std::vector<std::size_t> commits;  // written on the send thread, read after it is joined

 private:
  memory_queue& q_;
};

// Holds its first send until the store holds `until` messages, so that the
// batches stored meanwhile wait for the send stage together.
class held_first_sink final : public processed_sink {
 public:
  held_first_sink(store& db, std::int64_t until) : db_(db), until_(until) {}
  result<void> send(std::span<const message> stored) override {
    if (std::exchange(first_, false)) {
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
      while (db_.max_seq()->value() < until_ && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    sent += stored.size();
    return {};
  }
  std::size_t sent = 0;

 private:
  store& db_;
  const std::int64_t until_;
  bool first_ = true;
};

// A Kafka offset commit is a round trip: the batches that waited for the
// send stage together are committed together, not one round trip each.
TEST_F(Worker, CommitsTheBatchesItSentTogetherInOneCall) {
  memory_queue q(1000);
  counting_reader reader(q);
  held_first_sink sink(*db_, 4);
  worker w(reader, *db_, sink, {.max_batch = 5, .pipeline_depth = 4});
  std::atomic<int> acked{0};
  one_then_three(q, w, acked, std::chrono::milliseconds(50));
  EXPECT_EQ(acked, 4);
  EXPECT_EQ(sink.sent, 4u);
  // Four batches of one (each polled as it came): the first alone, the
  // three stored while its send was held in fewer calls than batches.
  std::size_t batches = 0;
  for (auto n : reader.commits) batches += n;
  EXPECT_EQ(batches, 4u);
  ASSERT_FALSE(reader.commits.empty());
  EXPECT_EQ(reader.commits.front(), 1u);
  EXPECT_LT(reader.commits.size(), 4u) << "one commit per batch";
}

// Random arrivals, batch limits and store delays, with and without
// poll_ahead: every message is stored once, in order, and acknowledged.
TEST_F(Worker, StoresEveryMessageOnceInOrderWhateverTheTiming) {
  const std::uint64_t seed = test_support::property_seed();
  const int examples = test_support::property_examples(24);
  std::mt19937_64 rng(seed);
  for (int e = 0; e < examples; ++e) {
    const bool ahead = rng() % 2;
    const std::size_t max_batch = 1 + rng() % 12;
    const int total = 1 + static_cast<int>(rng() % 60);
    const auto store_delay = std::chrono::microseconds(rng() % 3000);
    std::mt19937_64 arrivals(rng());
    hooked_store slow(*db_, [store_delay](std::span<const message>) -> result<void> {
      std::this_thread::sleep_for(store_delay);
      return {};
    });
    memory_queue q(1000);
    recording_sink sink;
    worker w(q, slow, sink, {.max_batch = max_batch, .poll_wait = std::chrono::milliseconds(5), .poll_ahead = ahead});
    std::atomic<int> acked{0};
    const auto first_seq = db_->max_seq()->value() + 1;
    w.start();
    for (int i = 0; i < total; ++i) {
      q.enqueue(message{random_message_id(), "u", std::to_string(i), now_utc(), seq_t{0}}, [&](std::error_code ec) {
        if (!ec) ++acked;
      });
      if (arrivals() % 3 == 0) std::this_thread::sleep_for(std::chrono::microseconds(arrivals() % 2000));
    }
    q.close();
    w.stop(std::chrono::steady_clock::now() + std::chrono::seconds(10));
    const auto where = ::testing::Message() << "seed " << seed << " example " << e << " ahead " << ahead
                                            << " max_batch " << max_batch << " total " << total;
    ASSERT_EQ(acked, total) << where;
    ASSERT_EQ(sink.got.size(), static_cast<std::size_t>(total)) << where;
    for (int i = 0; i < total; ++i) {
      ASSERT_EQ(sink.got[i].content, std::to_string(i)) << where;
      ASSERT_EQ(sink.got[i].seq.value(), first_seq + i) << where;
    }
  }
}

TEST(Handoff, WaitUntilWantedReturnsOnceAConsumerWaitsOnNothing) {
  handoff<int> h(4);
  EXPECT_FALSE(h.wait_until_wanted(std::chrono::milliseconds(20)));  // no consumer
  std::vector<int> got;
  std::thread consumer([&] { got = h.pop_up_to(10, one); });
  EXPECT_TRUE(h.wait_until_wanted(std::chrono::seconds(5)));
  h.push(7);
  consumer.join();
  EXPECT_EQ(got, std::vector<int>{7});
  h.push(8);  // waiting, and nobody asks: not wanted
  EXPECT_FALSE(h.wait_until_wanted(std::chrono::milliseconds(20)));
  h.close();
  EXPECT_TRUE(h.wait_until_wanted(std::chrono::milliseconds(20)));  // closed: never blocks a producer
}

}  // namespace
}  // namespace feed
