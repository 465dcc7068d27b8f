// The Kafka clients' counters as feed_kafka_* series. The clients keep them
// anyway (plain atomics, see their stats structs); scrapes read them.
//
// Thread safety: as metrics.h; the stats must outlive every render().
#pragma once

#include "metrics/metrics.h"
#include "queue/kafka/kafka_consumer.h"
#include "queue/kafka/kafka_processed_sink.h"
#include "queue/kafka/kafka_publisher.h"
#include "queue/kafka/kafka_subscriber.h"

namespace feed {

struct kafka_client_stats {
  const kafka_publisher_stats& publisher;     // accepted posts -> events-to-process
  const kafka_consumer_stats& consumer;       // events-to-process -> worker
  const kafka_processed_sink_stats& sink;     // worker -> events-processed
  const kafka_subscriber_stats& subscriber;   // events-processed -> broadcaster
};

void register_kafka_metrics(metrics& m, const kafka_client_stats& stats);

}  // namespace feed
