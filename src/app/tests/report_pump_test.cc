// The report pump against a real broker (FEED_TEST_KAFKA_BROKERS; skipped
// without it): every accepted post's acknowledgement is served on the loop,
// whatever the timing of bursts and pauses.
#include "app/report_pump.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "model/message_id.h"
#include "queue/kafka/kafka_publisher.h"
#include "queue/kafka/testing/test_options.h"
#include "queue/kafka/topics.h"

namespace feed {
namespace {

using namespace std::chrono_literals;

TEST(ReportPump, EveryAcknowledgementIsServedWhateverTheBurstsAndPauses) {
  const char* brokers = std::getenv("FEED_TEST_KAFKA_BROKERS");
  if (!brokers || !*brokers) GTEST_SKIP() << "FEED_TEST_KAFKA_BROKERS is not set";
  kafka_options o = kafka_test_options(brokers, "test-pump");
  o.events_partitions = 3;
  o.linger = 1ms;
  o.delivery_timeout = 30s;
  ASSERT_TRUE(ensure_topics(o));
  auto pub = kafka_publisher::create(o);
  ASSERT_TRUE(pub) << pub.err().message;

  boost::asio::io_context loop;
  auto work = boost::asio::make_work_guard(loop);
  auto pump = report_pump::start(loop, **pub);
  ASSERT_TRUE(pump) << pump.err().message;
  std::thread runner([&] { loop.run(); });

  // Bursts of 1-20 posts, each waited for before the next, with pauses of
  // 0-3 ms: a report that lands while the loop re-arms its wait must not
  // be left unserved (each burst would then stall until its posts time out).
  std::mt19937 random(std::random_device{}());
  constexpr int bursts = 300;
  int sent = 0;
  std::atomic<int> done{0}, failed{0};
  for (int b = 0; b < bursts; ++b) {
    const int n = 1 + static_cast<int>(random() % 20);
    for (int i = 0; i < n; ++i, ++sent) {
      std::string user = "u", content = "burst ";
      user += static_cast<char>('0' + i % 3);
      content += std::to_string(b);
      message m{random_message_id(), std::move(user), std::move(content), now_utc(), seq_t{0}};
      (*pub)->enqueue(std::move(m), [&](std::error_code ec) { ++(ec ? failed : done); });
    }
    const auto until = std::chrono::steady_clock::now() + 5s;
    while (done + failed < sent && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(100us);
    ASSERT_EQ(done + failed, sent) << "burst " << b << " of " << n << ": an acknowledgement was not served in 5 s";
    std::this_thread::sleep_for(std::chrono::microseconds(random() % 3000));
  }
  EXPECT_EQ(failed, 0);

  (*pub)->stop();
  (*pump)->stop();
  work.reset();
  runner.join();
}

}  // namespace
}  // namespace feed
