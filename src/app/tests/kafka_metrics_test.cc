#include "app/kafka_metrics.h"

#include <gtest/gtest.h>

namespace feed {
namespace {

TEST(KafkaMetrics, RendersEveryClientCounter) {
  kafka_publisher_stats pub;
  kafka_consumer_stats in;
  kafka_processed_sink_stats sink;
  kafka_subscriber_stats sub;
  metrics m;
  register_kafka_metrics(m, {pub, in, sink, sub});

  pub.published = 11;
  pub.failed = 2;
  in.received = 10;
  in.undecodable = 3;
  in.dead_lettered = 4;
  in.dead_letter_failed = 5;
  in.commits = 6;
  in.commit_failures = 7;
  in.failed_fatally = 1;
  sink.sent = 9;
  sub.delivered = 8;
  sub.without_seq = 12;
  sub.undecodable = 13;

  const std::string text = m.render();
  for (const char* line : {"feed_kafka_published_total 11", "feed_kafka_publish_failures_total 2",
                           "feed_kafka_consumed_total 10", "feed_kafka_consumer_undecodable_total 3",
                           "feed_kafka_dead_lettered_total 4", "feed_kafka_dead_letter_failures_total 5",
                           "feed_kafka_commits_total 6", "feed_kafka_commit_failures_total 7",
                           "feed_kafka_consumer_failed 1",
                           "feed_kafka_processed_sent_total 9", "feed_kafka_subscriber_delivered_total 8",
                           "feed_kafka_subscriber_without_seq_total 12",
                           "feed_kafka_subscriber_undecodable_total 13"}) {
    EXPECT_NE(text.find(std::string("\n") + line + "\n"), std::string::npos) << line << "\n" << text;
  }
  EXPECT_NE(text.find("# TYPE feed_kafka_published_total counter"), std::string::npos) << text;
  EXPECT_NE(text.find("# HELP feed_kafka_published_total "), std::string::npos) << text;
  EXPECT_NE(text.find("# TYPE feed_kafka_consumer_failed gauge"), std::string::npos) << text;
}

}  // namespace
}  // namespace feed
