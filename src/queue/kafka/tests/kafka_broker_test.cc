// Kafka backends against a real broker whose address is in
// FEED_TEST_KAFKA_BROKERS (start one with scripts/kafka.sh). Every test uses
// its own topics and group, so tests may share one broker and rerun on it.
// The unreachable-broker tests need no broker and always run.
#include <gtest/gtest.h>

#include "base/testing/closed_port.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdlib>
#include <future>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "model/envelope.h"
#include "model/message_id.h"
#include "queue/kafka/kafka_consumer.h"
#include "queue/kafka/kafka_processed_sink.h"
#include "queue/kafka/kafka_publisher.h"
#include "queue/kafka/kafka_subscriber.h"
#include "queue/kafka/testing/test_options.h"
#include "queue/kafka/topics.h"
#include "store/store.h"
#include "worker/worker.h"

namespace feed {
namespace {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

message make_message(const std::string& user, int n) {
  return message{random_message_id(), user, "post " + std::to_string(n), now_utc(), seq_t{0}};
}

kafka_options test_options(const std::string& brokers) { return kafka_test_options(brokers); }

// Publishes and waits for every delivery report; returns the errors seen.
std::vector<std::error_code> publish_all(kafka_publisher& pub, const std::vector<message>& msgs) {
  std::vector<std::promise<std::error_code>> done(msgs.size());
  std::vector<std::future<std::error_code>> results;
  for (auto& d : done) results.push_back(d.get_future());
  for (std::size_t i = 0; i < msgs.size(); ++i)
    pub.enqueue(msgs[i], [p = &done[i]](std::error_code ec) { p->set_value(ec); });
  std::vector<std::error_code> errors;
  for (auto& r : results) {
    if (r.wait_for(30s) != std::future_status::ready) {
      errors.push_back(errc::timeout);
      continue;
    }
    if (auto ec = r.get()) errors.push_back(ec);
  }
  return errors;
}

// Polls until `want` messages arrived or `bound` passed; commits each batch
// when asked. Returns the messages in arrival order.
std::vector<message> drain(kafka_consumer& c, std::size_t want, bool commit, std::chrono::milliseconds bound = 30s) {
  std::vector<message> got;
  const auto deadline = clock::now() + bound;
  while (got.size() < want && clock::now() < deadline) {
    auto b = c.poll(100, 200ms);
    EXPECT_TRUE(b) << b.err().message;
    if (!b) break;
    if (commit && !b->messages.empty()) {
      auto r = c.commit(*b);
      EXPECT_TRUE(r) << r.err().message;
    }
    got.insert(got.end(), b->messages.begin(), b->messages.end());
  }
  return got;
}

// Polls batches of at most `per_batch` until `want` messages arrived or 30 s
// passed, committing none: small batches, as a worker polls at low rates.
std::vector<batch> poll_batches(kafka_consumer& c, std::size_t want, std::size_t per_batch) {
  std::vector<batch> batches;
  std::size_t got = 0;
  const auto deadline = clock::now() + 30s;
  while (got < want && clock::now() < deadline) {
    auto b = c.poll(per_batch, 200ms);
    EXPECT_TRUE(b) << b.err().message;
    if (!b) break;
    if (b->messages.empty()) continue;
    got += b->messages.size();
    batches.push_back(std::move(*b));
  }
  return batches;
}

std::size_t message_count(const std::vector<batch>& batches) {
  std::size_t n = 0;
  for (const auto& b : batches) n += b.messages.size();
  return n;
}

std::set<std::string> ids(const std::vector<message>& msgs) {
  std::set<std::string> out;
  for (const auto& m : msgs) out.insert(m.id);
  return out;
}

// Writes raw records, for payloads our own producers never make.
void produce_raw(const kafka_options& o, const std::string& topic, const std::string& key, const std::string& value) {
  auto rk = make_handle(RD_KAFKA_PRODUCER, o, "raw", {{"acks", "all"}});
  ASSERT_TRUE(rk) << rk.err().message;
  ASSERT_EQ(rd_kafka_producev(rk->get(), RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_KEY(key.data(), key.size()),
                              RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
            RD_KAFKA_RESP_ERR_NO_ERROR);
  ASSERT_EQ(rd_kafka_flush(rk->get(), 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
}

// Best effort: a broker shared by many test runs should not pile up topics.
void delete_topics(const kafka_options& o, const std::vector<std::string>& names) {
  auto rk = make_handle(RD_KAFKA_PRODUCER, o, "cleanup", {});
  if (!rk) return;
  std::vector<rd_kafka_DeleteTopic_t*> topics;
  for (const auto& n : names) topics.push_back(rd_kafka_DeleteTopic_new(n.c_str()));
  kafka_queue q(rd_kafka_queue_new(rk->get()));
  rd_kafka_DeleteTopics(rk->get(), topics.data(), topics.size(), nullptr, q.get());
  kafka_event ev(rd_kafka_queue_poll(q.get(), 10000));
  rd_kafka_DeleteTopic_destroy_array(topics.data(), topics.size());
}

class KafkaBroker : public testing::Test {
 protected:
  void SetUp() override {
    const char* brokers = std::getenv("FEED_TEST_KAFKA_BROKERS");
    if (!brokers || !*brokers)
      GTEST_SKIP() << "FEED_TEST_KAFKA_BROKERS is not set; start a broker with "
                      "`scripts/kafka.sh start DIR PORT` and export its address to run this test";
    options_ = test_options(brokers);
    connected_ = true;
  }
  void TearDown() override {
    if (!connected_) return;
    delete_topics(options_, {options_.events_topic, options_.processed_topic, options_.events_topic + "-dead"});
  }
  // A publisher to events-to-process, created with `partitions`.
  std::unique_ptr<kafka_publisher> publisher(int partitions) {
    options_.events_partitions = partitions;
    if (auto r = ensure_topics(options_); !r) ADD_FAILURE() << r.err().message;
    auto pub = kafka_publisher::create(options_);
    if (!pub) {
      ADD_FAILURE() << pub.err().message;
      return nullptr;
    }
    return std::move(*pub);
  }
  // A new member of the group reads exactly `next`: what came before it
  // stays committed.
  void expect_group_resumes_with(const std::vector<message>& next) {
    auto c = kafka_consumer::create(options_);
    ASSERT_TRUE(c) << c.err().message;
    auto again = drain(**c, next.size(), /*commit=*/true);
    EXPECT_EQ(ids(again), ids(next));
    auto extra = drain(**c, 1, false, 2s);
    EXPECT_TRUE(extra.empty()) << extra.size() << " committed messages came again";
  }
  kafka_options options_;
  bool connected_ = false;
};

// n posts by `authors` users, numbered from `first`.
std::vector<message> posts(int n, int first, int authors) {
  std::vector<message> out;
  for (int i = 0; i < n; ++i) out.push_back(make_message("user-" + std::to_string(i % authors), first + i));
  return out;
}

TEST_F(KafkaBroker, EnsureTopicsCreatesThemOnceWithTheConfiguredPartitions) {
  options_.events_partitions = 3;
  options_.processed_partitions = 2;
  options_.dead_letter_topic = options_.events_topic + "-dead";
  auto r = ensure_topics(options_);
  ASSERT_TRUE(r) << r.err().message;
  auto again = ensure_topics(options_);  // already there: still success
  ASSERT_TRUE(again) << again.err().message;

  auto rk = make_handle(RD_KAFKA_PRODUCER, options_, "probe", {});
  ASSERT_TRUE(rk);
  auto events = topic_partitions(rk->get(), options_.events_topic, 5s);
  auto processed = topic_partitions(rk->get(), options_.processed_topic, 5s);
  auto dead = topic_partitions(rk->get(), options_.dead_letter_topic, 5s);
  ASSERT_TRUE(events && processed && dead);
  EXPECT_EQ(events->size(), 3u);
  EXPECT_EQ(processed->size(), 2u);
  EXPECT_EQ(dead->size(), 1u);
  auto missing = topic_partitions(rk->get(), options_.events_topic + "-nope", 5s);
  EXPECT_FALSE(missing);
}

// The publisher's ready() once it says yes, or its last answer after `bound`.
result<void> ready_within(kafka_publisher& pub, std::chrono::milliseconds bound) {
  auto ready = pub.ready();
  for (const auto deadline = clock::now() + bound; !ready && clock::now() < deadline;) {
    std::this_thread::sleep_for(20ms);
    ready = pub.ready();
  }
  return ready;
}

TEST_F(KafkaBroker, PublisherIsReadyOnlyWithItsTopicAndAProducerId) {
  auto pub = kafka_publisher::create(options_);
  ASSERT_TRUE(pub) << pub.err().message;
  EXPECT_FALSE((*pub)->ready());
  ASSERT_TRUE(ensure_topics(options_));
  options_.ready_cache = 0ms;
  const auto created = clock::now();
  auto fresh = kafka_publisher::create(options_);
  ASSERT_TRUE(fresh);
  auto early = (*fresh)->ready();
  // The producer's first state report comes 250 ms after its creation:
  // until then it cannot know that it holds a producer id.
  if (clock::now() - created < 200ms) {
    ASSERT_FALSE(early);
    EXPECT_NE(early.err().message.find("producer"), std::string::npos) << early.err().message;
  }
  auto ready = early ? early : ready_within(**fresh, 20s);
  ASSERT_TRUE(ready) << ready.err().message;
  // Ready means a post goes out without waiting for anything first.
  const auto sent = clock::now();
  EXPECT_TRUE(publish_all(**fresh, {make_message("ready", 1)}).empty());
  EXPECT_LT(clock::now() - sent, 5s);
}

// A producer whose local queue is at its bound refuses posts, and says so in
// ready() until its records are acknowledged.
TEST_F(KafkaBroker, PublisherIsNotReadyWhileItsQueueIsFull) {
  options_.queue_max_messages = 3;
  options_.linger = 1500ms;  // the records stay queued meanwhile
  options_.ready_cache = 0ms;
  auto pub = publisher(1);
  ASSERT_TRUE(pub);
  auto ready = ready_within(*pub, 20s);
  ASSERT_TRUE(ready) << ready.err().message;
  std::atomic<int> done{0};
  for (int i = 0; i < 3; ++i) pub->enqueue(make_message("full", i), [&](std::error_code) { ++done; });
  auto full = pub->ready();
  ASSERT_FALSE(full) << "ready with its queue at the bound";
  EXPECT_TRUE(full.err().is(errc::queue_full)) << full.err().message;
  for (const auto deadline = clock::now() + 20s; done < 3 && clock::now() < deadline;)
    std::this_thread::sleep_for(20ms);
  ASSERT_EQ(done, 3);
  auto again = pub->ready();
  EXPECT_TRUE(again) << again.err().message;
}

// True when `fd` turns readable within `bound`.
bool readable_within(int fd, std::chrono::milliseconds bound) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, static_cast<int>(bound.count())) == 1 && (p.revents & POLLIN);
}

TEST_F(KafkaBroker, HandedOverReportsRunOnlyWhereServedAndTheEventfdSaysWhen) {
  auto pub = publisher(3);
  ASSERT_TRUE(pub);
  auto fd = pub->hand_over_reports();
  ASSERT_TRUE(fd) << fd.err().message;
  EXPECT_EQ(*pub->hand_over_reports(), *fd);  // asked again: the same fd
  pub->serve_reports();
  const auto msgs = posts(40, 0, 7);
  std::atomic<int> done{0}, failed{0};
  const auto served_on = std::this_thread::get_id();
  std::atomic<bool> elsewhere{false};
  for (int round = 0; round < 2; ++round) {
    for (int i = round * 20; i < round * 20 + 20; ++i)
      pub->enqueue(msgs[static_cast<std::size_t>(i)], [&](std::error_code ec) {
        if (std::this_thread::get_id() != served_on) elsewhere = true;
        ++(ec ? failed : done);
      });
    // Every report of the round arrives, each signalled, and none runs
    // until this thread serves it.
    const auto deadline = clock::now() + 30s;
    while (done + failed < (round + 1) * 20 && clock::now() < deadline) {
      if (!readable_within(*fd, 100ms)) continue;
      const int before = done + failed;
      std::this_thread::sleep_for(20ms);  // a poll thread, if any, would run them now
      EXPECT_EQ(done + failed, before);
      pub->serve_reports();
    }
  }
  EXPECT_EQ(done, 40);
  EXPECT_EQ(failed, 0);
  EXPECT_FALSE(elsewhere);
  EXPECT_FALSE(readable_within(*fd, 0ms)) << "served, yet still signalled";
}

TEST_F(KafkaBroker, StopRunsEveryHandedOverReportWithoutAnyoneServing) {
  auto pub = publisher(3);
  ASSERT_TRUE(pub);
  ASSERT_TRUE(pub->hand_over_reports());
  std::atomic<int> called{0};
  for (const auto& m : posts(25, 0, 5)) pub->enqueue(m, [&](std::error_code) { ++called; });
  pub->stop();
  EXPECT_EQ(called, 25);
  pub->serve_reports();  // after stop(): harmless
  EXPECT_EQ(called, 25);
}

TEST_F(KafkaBroker, CommittedMessagesAreNotRedeliveredButUncommittedOnesAre) {
  auto pub = publisher(3);
  ASSERT_TRUE(pub);
  const auto first = posts(30, 0, 4), second = posts(20, 100, 4);
  EXPECT_TRUE(publish_all(*pub, first).empty());
  {
    auto c = kafka_consumer::create(options_);
    ASSERT_TRUE(c) << c.err().message;
    auto got = drain(**c, first.size(), /*commit=*/true);
    ASSERT_EQ(ids(got), ids(first));
    // Each author's messages arrive in publish order (one key, one partition).
    std::map<std::string, std::vector<std::string>> sent, seen;
    for (const auto& m : first) sent[m.user_id].push_back(m.id);
    for (const auto& m : got) seen[m.user_id].push_back(m.id);
    EXPECT_EQ(seen, sent);
    EXPECT_EQ(got.front().content.substr(0, 5), "post ");

    EXPECT_TRUE(publish_all(*pub, second).empty());
    auto uncommitted = drain(**c, second.size(), /*commit=*/false);
    ASSERT_EQ(ids(uncommitted), ids(second));
    EXPECT_GE((*c)->stats().commits.load(), 1u);
  }
  expect_group_resumes_with(second);
}

TEST_F(KafkaBroker, OneCommitCoversEveryBatchGivenInOrder) {
  auto pub = publisher(3);
  ASSERT_TRUE(pub);
  const auto sent = posts(40, 0, 5), later = posts(10, 100, 5);
  EXPECT_TRUE(publish_all(*pub, sent).empty());
  {
    auto c = kafka_consumer::create(options_);
    ASSERT_TRUE(c) << c.err().message;
    // Small batches, as a worker polls at low rates; none committed yet.
    auto batches = poll_batches(**c, sent.size(), 3);
    ASSERT_EQ(message_count(batches), sent.size());
    ASSERT_GT(batches.size(), 3u);
    const auto commits = (*c)->stats().commits.load();
    auto r = (*c)->commit(batches);
    ASSERT_TRUE(r) << r.err().message;
    EXPECT_EQ((*c)->stats().commits.load(), commits + 1) << "one round trip for " << batches.size() << " batches";
    // Committed already: a second call has nothing to send.
    ASSERT_TRUE((*c)->commit(batches));
    EXPECT_EQ((*c)->stats().commits.load(), commits + 1);
  }
  EXPECT_TRUE(publish_all(*pub, later).empty());
  expect_group_resumes_with(later);
}

// A stop's deadline bounds the wait for a commit's answer: before it, a
// commit waits for the broker as usual; once it has passed, the commit is
// sent but not waited for, and reported as not answered (the worker then
// fails its batches back, and Kafka delivers them again if the commit did
// not land).
TEST_F(KafkaBroker, ACommitIsNotWaitedForPastTheStopDeadline) {
  auto pub = publisher(1);
  ASSERT_TRUE(pub);
  const auto sent = posts(20, 0, 2);
  EXPECT_TRUE(publish_all(*pub, sent).empty());
  options_.commit_timeout = 30s;
  auto c = kafka_consumer::create(options_);
  ASSERT_TRUE(c) << c.err().message;
  auto batches = poll_batches(**c, sent.size(), 5);
  ASSERT_EQ(message_count(batches), sent.size());
  ASSERT_GE(batches.size(), 2u);

  (*c)->stop_waiting_at(clock::now() + 20s);
  auto early = (*c)->commit(std::span(batches).first(1));
  ASSERT_TRUE(early) << "a deadline still ahead must not cut a commit short: " << early.err().message;

  (*c)->stop_waiting_at(clock::now() - 1ms);
  const auto failures = (*c)->stats().commit_failures.load();
  const auto t0 = clock::now();
  auto late = (*c)->commit(std::span(batches).subspan(1));
  const auto took = clock::now() - t0;
  ASSERT_FALSE(late) << "the commit's answer was waited for past the stop deadline";
  EXPECT_TRUE(late.err().is(errc::timeout)) << late.err().message;
  EXPECT_LT(took, 1s);
  EXPECT_EQ((*c)->stats().commit_failures.load(), failures + 1);
}

// A consumer that holds partitions when the stop's deadline passes (or is
// about to) is destroyed at once. A close begun and left before its revoke
// was served used to hang the destroy for good, in 7 of 10 tries.
TEST_F(KafkaBroker, AConsumerStoppedAtOrPastItsDeadlineIsDestroyedWithoutHanging) {
  auto pub = publisher(1);
  ASSERT_TRUE(pub);
  const std::string group = options_.group_id;
  // Passed, or a millisecond left (too little for the close's revoke), then
  // random offsets around those: the revoke may land before, during or
  // after the close's bound.
  std::mt19937 random(std::random_device{}());
  for (int round = 0; round < 8; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    const auto sent = posts(2, 10 * round, 1);
    EXPECT_TRUE(publish_all(*pub, sent).empty());
    // A group of its own: the last one's member was not closed.
    options_.group_id = group + "-" + std::to_string(round);
    auto c = kafka_consumer::create(options_);
    ASSERT_TRUE(c) << c.err().message;
    ASSERT_FALSE(drain(**c, sent.size(), /*commit=*/false).empty()) << "the consumer got no partition";
    const auto offset = round == 0   ? -1ms
                        : round == 1 ? 1ms
                                     : std::chrono::milliseconds(static_cast<int>(random() % 40) - 5);
    SCOPED_TRACE("deadline in " + std::to_string(offset.count()) + " ms");
    (*c)->stop_waiting_at(clock::now() + offset);
    const auto t0 = clock::now();
    c->reset();
    EXPECT_LT(clock::now() - t0, 5s);
  }
}

// A member that died without leaving holds the group's next rebalance up
// until its session times out, so a new member's join waits. Stopped
// meanwhile, the new member holds no partitions and is destroyed at once;
// its leave used to queue behind the join and hold the destroy for the
// leave's request timeout (5 s).
TEST_F(KafkaBroker, AConsumerStillJoiningItsGroupIsDestroyedAtOnce) {
  auto pub = publisher(1);
  ASSERT_TRUE(pub);
  const auto sent = posts(2, 0, 1);
  EXPECT_TRUE(publish_all(*pub, sent).empty());
  {
    auto gone = kafka_consumer::create(options_);
    ASSERT_TRUE(gone) << gone.err().message;
    ASSERT_FALSE(drain(**gone, sent.size(), /*commit=*/false).empty()) << "the first member got no partition";
    (*gone)->stop_waiting_at(clock::now() - 1ms);  // destroyed without leaving
  }
  auto joining = kafka_consumer::create(options_);
  ASSERT_TRUE(joining) << joining.err().message;
  auto none = (*joining)->poll(10, 500ms);  // its join is under way
  ASSERT_TRUE(none) << none.err().message;
  EXPECT_TRUE(none->messages.empty()) << "the group did not wait for the first member's session";
  (*joining)->stop_waiting_at(clock::now() + 1s);
  const auto t0 = clock::now();
  joining->reset();
  EXPECT_LT(clock::now() - t0, 2s);
}

// More members than partitions: one holds none. Stopped, it must leave
// the group all the same; left in it, it held up the next member's join
// (and with it every partition of the others) until its session timed
// out.
TEST_F(KafkaBroker, AMemberWithNoPartitionLeavesTheGroupSoTheNextJoinWaitsForNobody) {
  auto pub = publisher(1);
  ASSERT_TRUE(pub);
  EXPECT_TRUE(publish_all(*pub, posts(1, 0, 1)).empty());
  auto owner = kafka_consumer::create(options_);
  ASSERT_TRUE(owner) << owner.err().message;
  ASSERT_EQ(drain(**owner, 1, /*commit=*/true).size(), 1u);
  auto idle = kafka_consumer::create(options_);
  ASSERT_TRUE(idle) << idle.err().message;
  // Both poll (the owner serves its side of the rebalance) until the new
  // member holds its assignment of nothing.
  const auto joined_by = clock::now() + 30s;
  while (!((*idle)->member() && (*owner)->member()) && clock::now() < joined_by) {
    ASSERT_TRUE((*owner)->poll(10, 50ms));
    ASSERT_TRUE((*idle)->poll(10, 50ms));
  }
  ASSERT_TRUE((*idle)->member()) << "the second member never got its assignment";
  (*idle)->stop_waiting_at(clock::now() + 5s);
  const auto t0 = clock::now();
  idle->reset();
  EXPECT_LT(clock::now() - t0, 3s);

  // A new member joins. The rebalance it starts (the owner gives its
  // partition up until it ends) must not wait out the stopped member's
  // session (6 s here): it ends once both have their assignments.
  auto joining = kafka_consumer::create(options_);
  ASSERT_TRUE(joining) << joining.err().message;
  const auto start = clock::now();
  while (!((*joining)->member() && (*owner)->member()) && clock::now() < start + 20s) {
    ASSERT_TRUE((*owner)->poll(10, 50ms));
    ASSERT_TRUE((*joining)->poll(10, 50ms));
  }
  ASSERT_TRUE((*joining)->member()) << "the new member never got its assignment";
  EXPECT_LT(clock::now() - start, 4s) << "the rebalance waited for the member that stopped";
  // And the partition is read again.
  const auto later = posts(1, 1, 1);
  EXPECT_TRUE(publish_all(*pub, later).empty());
  std::vector<message> got;
  const auto sent = clock::now();
  while (got.empty() && clock::now() < sent + 10s) {
    for (auto* c : {&**owner, &**joining}) {
      auto b = c->poll(10, 50ms);
      ASSERT_TRUE(b) << b.err().message;
      got.insert(got.end(), b->messages.begin(), b->messages.end());
    }
  }
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].id, later[0].id);
}

// A member stopped in the middle of a rebalance (its revoke served, its
// new assignment not yet come: a rolling restart that stops the next
// instance while the previous one's join is under way) holds no
// partitions, but it is a member: it must leave, or the group assigns it a
// partition that then waits out its session.
TEST_F(KafkaBroker, AMemberStoppedInTheMiddleOfARebalanceLeavesTheGroup) {
  auto pub = publisher(3);
  ASSERT_TRUE(pub);
  auto owner = kafka_consumer::create(options_);
  ASSERT_TRUE(owner) << owner.err().message;
  auto other = kafka_consumer::create(options_);
  ASSERT_TRUE(other) << other.err().message;
  const auto settled_by = clock::now() + 30s;
  while (!((*owner)->member() && (*other)->member()) && clock::now() < settled_by) {
    ASSERT_TRUE((*owner)->poll(10, 50ms));
    ASSERT_TRUE((*other)->poll(10, 50ms));
  }
  ASSERT_TRUE((*owner)->member() && (*other)->member()) << "the two members never settled";

  // A third member joins. `owner` is not polled, so it does not serve its
  // revoke and the rebalance stays open; `other` serves its revoke, and is
  // stopped there (in a thread, while the rest go on polling).
  auto joining = kafka_consumer::create(options_);
  ASSERT_TRUE(joining) << joining.err().message;
  const auto revoked_by = clock::now() + 30s;
  while ((*other)->member() && clock::now() < revoked_by) {
    ASSERT_TRUE((*other)->poll(10, 50ms));
    ASSERT_TRUE((*joining)->poll(10, 50ms));
  }
  ASSERT_FALSE((*other)->member()) << "the third member's join started no rebalance";
  auto stopping = std::async(std::launch::async, [&] {
    (*other)->stop_waiting_at(clock::now() + 5s);
    other->reset();
  });

  // Every partition is read again soon: none was handed to the stopped
  // member, to wait out its session (6 s here).
  const auto start = clock::now();
  const auto sent = posts(30, 0, 30);  // thirty authors: every partition
  std::vector<message> got;
  bool published = false;
  while (got.size() < sent.size() && clock::now() < start + 20s) {
    for (auto* c : {&**owner, &**joining}) {
      auto b = c->poll(100, 50ms);
      ASSERT_TRUE(b) << b.err().message;
      got.insert(got.end(), b->messages.begin(), b->messages.end());
    }
    if (!published && (*owner)->member() && (*joining)->member()) {
      EXPECT_TRUE(publish_all(*pub, sent).empty());
      published = true;
    }
  }
  stopping.get();
  EXPECT_EQ(ids(got), ids(sent));
  EXPECT_LT(clock::now() - start, 5s) << "a partition waited for the member stopped in the rebalance";
}

TEST_F(KafkaBroker, PoisonRecordIsSkippedCountedAndDeadLettered) {
  options_.events_partitions = 1;  // one partition: the poison sits in front of the valid message
  options_.dead_letter_topic = options_.events_topic + "-dead";
  ASSERT_TRUE(ensure_topics(options_));
  produce_raw(options_, options_.events_topic, "mallory", "this is not JSON");
  produce_raw(options_, options_.events_topic, "mallory", R"({"data": {"id": 1}})");
  // Well formed, but no store takes them: before they were skipped here, the
  // worker retried their batch for ever and stored nothing more.
  produce_raw(options_, options_.events_topic, "mallory",
              R"({"data": {"id": "not-a-uuid", "user_id": "mallory", "content": "x"}})");
  produce_raw(options_, options_.events_topic, "mallory",
              R"({"data": {"id": "0190a0a0-0000-7000-8000-000000000001", "user_id": "mallory", )"
              R"("content": "a\u0000b"}})");
  produce_raw(options_, options_.events_topic, "mallory",
              R"({"data": {"id": "0190a0a0-0000-7000-8000-000000000002", "user_id": ")" + std::string(3000, 'm') +
                  R"(", "content": "x"}})");
  auto pub = kafka_publisher::create(options_);
  ASSERT_TRUE(pub);
  const message good = make_message("alice", 1);
  EXPECT_TRUE(publish_all(**pub, {good}).empty());

  auto c = kafka_consumer::create(options_);
  ASSERT_TRUE(c) << c.err().message;
  auto got = drain(**c, 1, /*commit=*/true);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].id, good.id);
  EXPECT_EQ((*c)->stats().undecodable.load(), 5u);
  EXPECT_EQ((*c)->stats().dead_lettered.load(), 5u);  // the commit waited for the copies

  // The copies keep the original bytes.
  kafka_options dl = options_;
  dl.events_topic = options_.dead_letter_topic;
  dl.dead_letter_topic.clear();
  dl.group_id += "-dead-reader";
  auto reader = kafka_consumer::create(dl);
  ASSERT_TRUE(reader);
  const auto deadline = clock::now() + 15s;
  while ((*reader)->stats().undecodable.load() < 5 && clock::now() < deadline) {
    auto b = (*reader)->poll(10, 200ms);
    ASSERT_TRUE(b);
    EXPECT_TRUE(b->messages.empty());
  }
  EXPECT_EQ((*reader)->stats().undecodable.load(), 5u);
}

// What the reference's API publishes for a post without a user_id (it
// answered 202, and its worker stores it): a message for the worker, not a
// poison record.
TEST_F(KafkaBroker, AReferenceRecordWithAnEmptyUserIdIsConsumedAsAMessage) {
  options_.events_partitions = 1;
  options_.dead_letter_topic = options_.events_topic + "-dead";
  ASSERT_TRUE(ensure_topics(options_));
  produce_raw(options_, options_.events_topic, "0e3b9c9e-4d7e-4c36-a3f5-2f0d6f1b7c11",
              R"({"id":"0e3b9c9e-4d7e-4c36-a3f5-2f0d6f1b7c11","event_type":"message",)"
              R"("timestamp":"2026-12-02T10:00:00.123456789Z","version":"1.0",)"
              R"("data":{"id":"0190a0a0-0000-7000-8000-0000000000e1","user_id":"","content":"no user",)"
              R"("created_at":"2026-12-02T10:00:00.123456789Z"}})");
  auto c = kafka_consumer::create(options_);
  ASSERT_TRUE(c) << c.err().message;
  auto got = drain(**c, 1, /*commit=*/true);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].user_id, "");
  EXPECT_EQ(got[0].content, "no user");
  EXPECT_EQ((*c)->stats().undecodable.load(), 0u);
}

TEST_F(KafkaBroker, SinkAndSubscriberDeliverEveryMessageWithSeqAcrossPartitions) {
  options_.processed_partitions = 3;
  ASSERT_TRUE(ensure_topics(options_));

  std::mutex mu;
  std::condition_variable cv;
  std::vector<message> received;
  kafka_subscriber sub(options_, [&](std::vector<message> batch) {
    std::lock_guard lock(mu);
    received.insert(received.end(), batch.begin(), batch.end());
    cv.notify_all();
  });
  auto started = sub.start();
  ASSERT_TRUE(started) << started.err().message;

  auto sink = kafka_processed_sink::create(options_);
  ASSERT_TRUE(sink) << sink.err().message;
  std::vector<message> stored;
  for (int i = 1; i <= 60; ++i) {
    message m = make_message("user-" + std::to_string(i % 7), i);
    m.seq = seq_t{i};
    stored.push_back(m);
  }
  for (std::size_t i = 0; i < stored.size(); i += 20) {
    auto r = (*sink)->send(std::span(stored).subspan(i, 20));
    ASSERT_TRUE(r) << r.err().message;
  }
  // A record without seq is skipped, not delivered.
  produce_raw(options_, options_.processed_topic, "x", encode_envelope(make_message("x", 0), event_message_created, false));

  std::unique_lock lock(mu);
  cv.wait_for(lock, 30s, [&] { return received.size() >= stored.size(); });
  std::set<std::int64_t> seqs;
  for (const auto& m : received) seqs.insert(m.seq.value());
  EXPECT_EQ(received.size(), stored.size());
  EXPECT_EQ(seqs.size(), stored.size());
  EXPECT_EQ(*seqs.begin(), 1);
  EXPECT_EQ(*seqs.rbegin(), 60);
  EXPECT_EQ(ids(received), ids(stored));
  lock.unlock();

  const auto deadline = clock::now() + 10s;
  while (sub.stats().without_seq.load() == 0 && clock::now() < deadline) std::this_thread::sleep_for(20ms);
  EXPECT_EQ(sub.stats().without_seq.load(), 1u);
  EXPECT_EQ((*sink)->sent(), stored.size());

  // Records on every partition: keys spread over them.
  auto rk = make_handle(RD_KAFKA_PRODUCER, options_, "probe", {});
  ASSERT_TRUE(rk);
  int used = 0;
  for (int p = 0; p < 3; ++p) {
    std::int64_t lo = 0, hi = 0;
    ASSERT_EQ(rd_kafka_query_watermark_offsets(rk->get(), options_.processed_topic.c_str(), p, &lo, &hi, 5000),
              RD_KAFKA_RESP_ERR_NO_ERROR);
    used += hi > 0;
  }
  EXPECT_GE(used, 2);
  sub.stop();
}

TEST_F(KafkaBroker, SubscriberStartsAtTheEnd) {
  options_.processed_partitions = 2;
  ASSERT_TRUE(ensure_topics(options_));
  auto sink = kafka_processed_sink::create(options_);
  ASSERT_TRUE(sink);
  message old = make_message("u", 0);
  old.seq = seq_t{1};
  ASSERT_TRUE((*sink)->send(std::span(&old, 1)));

  std::mutex mu;
  std::vector<message> received;
  kafka_subscriber sub(options_, [&](std::vector<message> batch) {
    std::lock_guard lock(mu);
    received.insert(received.end(), batch.begin(), batch.end());
  });
  ASSERT_TRUE(sub.start());
  message fresh = make_message("u", 1);
  fresh.seq = seq_t{2};
  ASSERT_TRUE((*sink)->send(std::span(&fresh, 1)));
  const auto deadline = clock::now() + 20s;
  for (;;) {
    {
      std::lock_guard lock(mu);
      if (!received.empty() || clock::now() > deadline) break;
    }
    std::this_thread::sleep_for(20ms);
  }
  std::this_thread::sleep_for(300ms);
  std::lock_guard lock(mu);
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(received[0].id, fresh.id);
}

// A store good enough for the worker: idempotent by id, gapless seq.
class fake_store final : public store {
 public:
  result<insert_report> insert_batch(std::vector<message>& batch) override {
    std::lock_guard lock(mu_);
    std::vector<message> out = batch;
    const std::size_t before = seqs_.size();
    bool all_new = true;
    for (message& m : out) {
      auto [it, fresh] = seqs_.try_emplace(m.id, seq_t{static_cast<std::int64_t>(seqs_.size()) + 1});
      m.seq = it->second;
      all_new = all_new && fresh;
    }
    std::sort(out.begin(), out.end(), [](const message& a, const message& b) { return a.seq < b.seq; });
    insert_report report;
    report.inserted = seqs_.size() - before;
    if (!all_new) report.as_given = std::move(batch);
    batch = std::move(out);
    return report;
  }
  result<std::vector<message>> read(const read_query&) override { return std::vector<message>{}; }
  result<seq_t> max_seq() override {
    std::lock_guard lock(mu_);
    return seq_t{static_cast<std::int64_t>(seqs_.size())};
  }
  result<void> ping() override { return {}; }
  result<std::optional<message>> find(const std::string&) override { return std::optional<message>{}; }
  result<void> write_status(std::chrono::milliseconds) override { return {}; }

 private:
  std::mutex mu_;
  std::map<std::string, seq_t> seqs_;  // GUARDED_BY(mu_)
};

TEST_F(KafkaBroker, WorkerMovesMessagesFromPublisherToSubscriber) {
  ASSERT_TRUE(ensure_topics(options_));
  std::mutex mu;
  std::vector<message> received;
  kafka_subscriber sub(options_, [&](std::vector<message> batch) {
    std::lock_guard lock(mu);
    received.insert(received.end(), batch.begin(), batch.end());
  });
  ASSERT_TRUE(sub.start());

  auto pub = kafka_publisher::create(options_);
  auto in = kafka_consumer::create(options_);
  auto out = kafka_processed_sink::create(options_);
  ASSERT_TRUE(pub && in && out);
  fake_store db;
  worker w(**in, db, **out, worker_options{});
  w.start();

  std::vector<message> msgs;
  for (int i = 0; i < 50; ++i) msgs.push_back(make_message("user-" + std::to_string(i % 5), i));
  EXPECT_TRUE(publish_all(**pub, msgs).empty());

  const auto deadline = clock::now() + 30s;
  for (;;) {
    {
      std::lock_guard lock(mu);
      if (received.size() >= msgs.size() || clock::now() > deadline) break;
    }
    std::this_thread::sleep_for(20ms);
  }
  (*in)->close();
  w.stop(clock::now() + 5s);
  sub.stop();
  std::lock_guard lock(mu);
  EXPECT_EQ(ids(received), ids(msgs));
  std::set<std::int64_t> seqs;
  for (const auto& m : received) seqs.insert(m.seq.value());
  EXPECT_EQ(seqs.size(), msgs.size());
  EXPECT_EQ(*seqs.rbegin(), static_cast<std::int64_t>(msgs.size()));
}

// A port nothing listens on: bound, read back, closed.
using feed::test_support::closed_port;

kafka_options unreachable_options() {
  kafka_options o = test_options("127.0.0.1:" + std::to_string(closed_port()));
  o.delivery_timeout = 2s;
  o.request_timeout = 1s;
  o.admin_timeout = 2s;
  o.ready_timeout = 500ms;
  o.flush_timeout = 1s;
  return o;
}

TEST(KafkaUnreachable, PublishFailsWithinTheDeliveryBound) {
  const kafka_options o = unreachable_options();
  auto pub = kafka_publisher::create(o);
  ASSERT_TRUE(pub) << pub.err().message;
  const auto start = clock::now();
  auto errors = publish_all(**pub, {make_message("a", 1), make_message("b", 2)});
  const auto took = clock::now() - start;
  ASSERT_EQ(errors.size(), 2u);
  // Never sent: certainly not stored, so a key's entry need not wait for
  // a late write (kafka_publisher::known_not_stored).
  for (auto ec : errors) {
    EXPECT_EQ(ec, errc::not_sent) << ec.message();
    EXPECT_TRUE((*pub)->known_not_stored(ec));
  }
  EXPECT_FALSE((*pub)->known_not_stored(errc::timeout));
  EXPECT_LT(took, o.delivery_timeout + 3s);

  const auto probe = clock::now();
  auto ready = (*pub)->ready();
  EXPECT_FALSE(ready);
  EXPECT_LT(clock::now() - probe, o.ready_timeout + 1s);

  const auto stopping = clock::now();
  (*pub)->stop();
  EXPECT_LT(clock::now() - stopping, o.flush_timeout + 2s);
  std::promise<std::error_code> after;
  (*pub)->enqueue(make_message("c", 3), [&](std::error_code ec) { after.set_value(ec); });
  EXPECT_EQ(after.get_future().get(), errc::shutting_down);
}

TEST(KafkaUnreachable, StopFailsQueuedMessagesWithShuttingDown) {
  kafka_options o = unreachable_options();
  o.delivery_timeout = 60s;  // longer than the flush bound: stop() must give up first
  auto pub = kafka_publisher::create(o);
  ASSERT_TRUE(pub);
  std::promise<std::error_code> done;
  (*pub)->enqueue(make_message("a", 1), [&](std::error_code ec) { done.set_value(ec); });
  const auto start = clock::now();
  (*pub)->stop();
  EXPECT_LT(clock::now() - start, o.flush_timeout + 7s);
  auto f = done.get_future();
  ASSERT_EQ(f.wait_for(0s), std::future_status::ready);
  EXPECT_EQ(f.get(), errc::shutting_down);
}

TEST(KafkaUnreachable, SinkEnsureTopicsAndSubscriberFailWithinBounds) {
  const kafka_options o = unreachable_options();
  auto start = clock::now();
  auto topics = ensure_topics(o);
  ASSERT_FALSE(topics);
  EXPECT_LT(clock::now() - start, o.admin_timeout * 2 + 3s);
  // Says why, not only that the request timed out: the broker and its
  // error, which librdkafka only logs.
  EXPECT_NE(topics.err().message.find("the brokers' last error"), std::string::npos) << topics.err().message;
  EXPECT_NE(topics.err().message.find(o.brokers), std::string::npos) << topics.err().message;
  EXPECT_NE(topics.err().message.find("Connection refused"), std::string::npos) << topics.err().message;

  auto sink = kafka_processed_sink::create(o);
  ASSERT_TRUE(sink);
  message m = make_message("a", 1);
  m.seq = seq_t{1};
  start = clock::now();
  auto r = (*sink)->send(std::span(&m, 1));
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.err().is(errc::unavailable)) << r.err().message;
  EXPECT_LT(clock::now() - start, o.delivery_timeout + 3s);

  kafka_subscriber sub(o, [](std::vector<message>) {});
  start = clock::now();
  EXPECT_FALSE(sub.start());
  EXPECT_LT(clock::now() - start, o.admin_timeout + 3s);
}

TEST(KafkaUnreachable, SinkGivesUpAtTheStopDeadlineNotAtItsOwnBound) {
  kafka_options o = unreachable_options();
  o.delivery_timeout = 60s;  // far beyond the test's bound
  auto sink = kafka_processed_sink::create(o);
  ASSERT_TRUE(sink);
  message m = make_message("a", 1);
  m.seq = seq_t{1};
  const auto start = clock::now();
  auto waiting = std::async(std::launch::async, [&] { return (*sink)->send(std::span(&m, 1)); });
  std::this_thread::sleep_for(300ms);
  ASSERT_EQ(waiting.wait_for(0s), std::future_status::timeout) << "the send did not wait for the broker";
  (*sink)->stop_waiting_at(clock::now() + 200ms);  // set while the send waits
  ASSERT_EQ(waiting.wait_for(5s), std::future_status::ready);
  EXPECT_FALSE(waiting.get());
  EXPECT_LT(clock::now() - start, 5s);
  const auto later = clock::now();
  auto refused = (*sink)->send(std::span(&m, 1));
  ASSERT_FALSE(refused);
  EXPECT_TRUE(refused.err().is(errc::shutting_down)) << refused.err().message;
  EXPECT_LT(clock::now() - later, 100ms);
}

TEST(KafkaOptions, BadPropertyIsReportedByName) {
  kafka_options o;
  o.extra_config = {{"no.such.property", "1"}};
  auto pub = kafka_publisher::create(o);
  ASSERT_FALSE(pub);
  EXPECT_TRUE(pub.err().is(errc::invalid_input));
  EXPECT_NE(pub.err().message.find("no.such.property"), std::string::npos) << pub.err().message;
}

}  // namespace
}  // namespace feed
