#include "app/kafka_metrics.h"

#include <atomic>
#include <cstdint>

namespace feed {
namespace {

metrics::reader read(const std::atomic<std::uint64_t>& counter) {
  return [&counter] { return double(counter.load()); };
}

}  // namespace

void register_kafka_metrics(metrics& m, const kafka_client_stats& stats) {
  const auto& pub = stats.publisher;
  m.counter("feed_kafka_published_total", "Accepted posts acknowledged by Kafka on the events topic",
            read(pub.published));
  m.counter("feed_kafka_publish_failures_total",
            "Accepted posts Kafka did not acknowledge (delivery failed or timed out, queue full, stopping)",
            read(pub.failed));

  const auto& in = stats.consumer;
  m.counter("feed_kafka_consumed_total", "Events the worker's consumer took from the events topic",
            read(in.received));
  m.counter("feed_kafka_consumer_undecodable_total", "Records of the events topic skipped as undecodable",
            read(in.undecodable));
  m.counter("feed_kafka_dead_lettered_total", "Undecodable records copied to the dead-letter topic",
            read(in.dead_lettered));
  m.counter("feed_kafka_dead_letter_failures_total",
            "Undecodable records that could not be copied to the dead-letter topic", read(in.dead_letter_failed));
  m.gauge("feed_kafka_consumer_failed",
          "1 once the worker's consumer failed fatally (fenced by another instance with its --kafka-instance-id) "
          "and reads nothing more; restart the instance with an id of its own",
          read(in.failed_fatally));
  m.counter("feed_kafka_commits_total", "Offset commits of the worker's consumer", read(in.commits));
  m.counter("feed_kafka_commit_failures_total", "Offset commits of the worker's consumer that failed (retried)",
            read(in.commit_failures));

  m.counter("feed_kafka_processed_sent_total",
            "Stored messages this instance's worker had acknowledged on the processed topic",
            read(stats.sink.sent));

  const auto& sub = stats.subscriber;
  m.counter("feed_kafka_subscriber_delivered_total",
            "Stored messages this instance's subscriber read from the processed topic", read(sub.delivered));
  m.counter("feed_kafka_subscriber_without_seq_total", "Records of the processed topic skipped for having no seq",
            read(sub.without_seq));
  m.counter("feed_kafka_subscriber_undecodable_total", "Records of the processed topic skipped as undecodable",
            read(sub.undecodable));
}

}  // namespace feed
