// The worker's consumer against librdkafka's mock cluster, for broker
// answers a real broker gives only by chance: here, a group coordinator
// that says "not coordinator" to the fetch of committed offsets after an
// assignment. No broker needed; these always run.
#include <gtest/gtest.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "model/message_id.h"
#include "queue/kafka/kafka_consumer.h"
#include "queue/kafka/kafka_publisher.h"
#include "queue/kafka/testing/test_options.h"

namespace feed {
namespace {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

// OffsetFetch's API key (the Kafka protocol's; librdkafka's header for it
// is not installed).
constexpr std::int16_t kOffsetFetch = 9;

// One mock broker, hosted by a handle of its own.
class mock_cluster {
 public:
  mock_cluster() {
    char why[256];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "0", why, sizeof why);
    host_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why);
    if (host_) cluster_ = rd_kafka_mock_cluster_new(host_, 1);
  }
  ~mock_cluster() {
    if (cluster_) rd_kafka_mock_cluster_destroy(cluster_);
    if (host_) rd_kafka_destroy(host_);
  }
  mock_cluster(const mock_cluster&) = delete;
  mock_cluster& operator=(const mock_cluster&) = delete;

  rd_kafka_mock_cluster_t* get() const { return cluster_; }
  std::string brokers() const { return rd_kafka_mock_cluster_bootstraps(cluster_); }

  // Options naming a fresh group and an events topic of three partitions,
  // created here; nothing when the cluster or the topic could not be made.
  std::optional<kafka_options> with_events_topic() const {
    if (!cluster_) return std::nullopt;
    auto o = kafka_test_options(brokers(), "mock");
    o.events_partitions = 3;
    if (rd_kafka_mock_topic_create(cluster_, o.events_topic.c_str(), 3, 1) != RD_KAFKA_RESP_ERR_NO_ERROR)
      return std::nullopt;
    return o;
  }

 private:
  rd_kafka_t* host_ = nullptr;
  rd_kafka_mock_cluster_t* cluster_ = nullptr;
};

std::vector<message> drain(kafka_consumer& c, std::size_t want, std::chrono::milliseconds bound) {
  std::vector<message> got;
  const auto deadline = clock::now() + bound;
  while (got.size() < want && clock::now() < deadline) {
    auto b = c.poll(100, 200ms);
    if (!b || b->end_of_stream) break;
    if (!b->messages.empty()) (void)c.commit(*b);
    got.insert(got.end(), b->messages.begin(), b->messages.end());
  }
  return got;
}

// Publishes `n` records whose contents are `tag` and their index, and
// waits for every acknowledgement.
void publish(kafka_publisher& pub, const std::string& tag, int n) {
  std::vector<std::promise<std::error_code>> done(n);
  for (int i = 0; i < n; ++i) {
    // Built up rather than with operator+, which GCC 12 warns about here.
    std::string user = "user-", content = tag;
    user += std::to_string(i % 7);
    content += std::to_string(i);
    pub.enqueue(message{random_message_id(), user, content, now_utc(), seq_t{0}},
                [p = &done[i]](std::error_code ec) { p->set_value(ec); });
  }
  for (auto& d : done) {
    auto f = d.get_future();
    ASSERT_EQ(f.wait_for(20s), std::future_status::ready);
    ASSERT_FALSE(f.get());
  }
}

std::multiset<std::string> contents_of(const std::vector<message>& ms) {
  std::multiset<std::string> out;
  for (const auto& m : ms) out.insert(m.content);
  return out;
}

// librdkafka leaves an assigned partition waiting for its committed offset
// for good when the group coordinator answers the offset fetch with a
// request-level "not coordinator" (seen after a broker paused past the
// group session; librdkafka issue 5586): the worker read nothing more
// until a restart, with accepted posts in the topic. The consumer fetches
// the offsets itself, asks again while refused, and assigns the
// partitions at them.
TEST(KafkaMock, AnOffsetFetchRefusedByTheCoordinatorDoesNotStallThePartitions) {
  mock_cluster mock;
  const auto options = mock.with_events_topic();
  ASSERT_TRUE(options);
  const kafka_options& o = *options;

  auto pub = kafka_publisher::create(o);
  ASSERT_TRUE(pub) << pub.err().message;
  constexpr int n = 30;
  ASSERT_NO_FATAL_FAILURE(publish(**pub, "post ", n));

  // Every offset fetch of the first few is refused as a whole.
  rd_kafka_mock_push_request_errors(mock.get(), kOffsetFetch, 3, RD_KAFKA_RESP_ERR_NOT_COORDINATOR,
                                    RD_KAFKA_RESP_ERR_NOT_COORDINATOR, RD_KAFKA_RESP_ERR_NOT_COORDINATOR);
  auto c = kafka_consumer::create(o);
  ASSERT_TRUE(c) << c.err().message;
  const auto got = drain(**c, n, 30s);
  EXPECT_EQ(got.size(), static_cast<std::size_t>(n));
  (*c)->close();
  (*pub)->stop();
}

// How many offset fetches in a row are refused, and with which of the
// errors a coordinator gives while it moves or loads.
struct refusals {
  int count;
  rd_kafka_resp_err_t error;
};

class KafkaMockRefusals : public ::testing::TestWithParam<refusals> {};

// A partition whose offsets were committed resumes there after refused
// fetches, whatever their number and error: neither from the beginning
// (the first consumer's records again) nor from the end (records lost).
TEST_P(KafkaMockRefusals, APartitionResumesAtItsCommittedOffset) {
  mock_cluster mock;
  const auto options = mock.with_events_topic();
  ASSERT_TRUE(options);
  const kafka_options& o = *options;
  auto pub = kafka_publisher::create(o);
  ASSERT_TRUE(pub) << pub.err().message;

  constexpr int n = 20;
  ASSERT_NO_FATAL_FAILURE(publish(**pub, "first ", n));
  {
    auto a = kafka_consumer::create(o);
    ASSERT_TRUE(a) << a.err().message;
    ASSERT_EQ(drain(**a, n, 30s).size(), static_cast<std::size_t>(n));
    (*a)->close();
  }
  ASSERT_NO_FATAL_FAILURE(publish(**pub, "second ", n));

  const std::vector<rd_kafka_resp_err_t> errors(static_cast<std::size_t>(GetParam().count), GetParam().error);
  rd_kafka_mock_push_request_errors_array(mock.get(), kOffsetFetch, errors.size(), errors.data());
  auto b = kafka_consumer::create(o);
  ASSERT_TRUE(b) << b.err().message;
  auto got = drain(**b, n, 30s);
  // Anything read again would come with or right after the rest.
  const auto more = drain(**b, n, 1s);
  got.insert(got.end(), more.begin(), more.end());
  std::multiset<std::string> want;
  for (int i = 0; i < n; ++i) want.insert("second " + std::to_string(i));
  EXPECT_EQ(contents_of(got), want);
  (*b)->close();
  (*pub)->stop();
}

INSTANTIATE_TEST_SUITE_P(CoordinatorErrors, KafkaMockRefusals,
                         ::testing::Values(refusals{1, RD_KAFKA_RESP_ERR_NOT_COORDINATOR},
                                           refusals{15, RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE}),
                         [](const auto& info) {
                           return std::to_string(info.param.count) + "_" +
                                  std::to_string(static_cast<int>(info.param.error));
                         });

// A consumer closed while its offset fetches are still refused stops
// asking at once, rather than holding the worker's poll for the whole
// group session.
TEST(KafkaMock, CloseWhileOffsetFetchesAreRefusedReturnsInTime) {
  mock_cluster mock;
  const auto options = mock.with_events_topic();
  ASSERT_TRUE(options);
  const kafka_options& o = *options;
  const std::vector<rd_kafka_resp_err_t> errors(1000, RD_KAFKA_RESP_ERR_NOT_COORDINATOR);
  rd_kafka_mock_push_request_errors_array(mock.get(), kOffsetFetch, errors.size(), errors.data());
  auto c = kafka_consumer::create(o);
  ASSERT_TRUE(c) << c.err().message;
  auto polled = std::async(std::launch::async, [&] { return drain(**c, 1, 20s); });
  // The mock's group join takes about 4 s; the refused fetches follow it.
  std::this_thread::sleep_for(6s);
  (*c)->close();
  // The poll stuck in the rebalance callback returns at the next refusal.
  ASSERT_EQ(polled.wait_for(2s), std::future_status::ready);
  EXPECT_TRUE(polled.get().empty());
}

}  // namespace
}  // namespace feed
