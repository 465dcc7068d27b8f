// Topic set-up and partition discovery.
//
// ensure_topics() runs once at start-up, before any publisher or worker:
// it creates events_topic, processed_topic and (when set) dead_letter_topic
// with the configured partitions and replication factor, treats "already
// exists" as success (several instances start at once), then waits until
// the broker's metadata shows every topic with leaders for all partitions,
// so the first produce does not race the creation. Existing topics are left
// as they are, whatever their partition count.
//
// Failures: errc::unavailable (broker unreachable or creation refused) or
// errc::timeout, each within options.admin_timeout.
//
// Thread safety: free functions; any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <librdkafka/rdkafka.h>

#include "base/result.h"
#include "queue/kafka/kafka_options.h"

namespace feed {

result<void> ensure_topics(const kafka_options& options);

// The partition ids of `topic` from a metadata request through `rk`;
// errc::unavailable when the topic does not exist or has no partitions.
result<std::vector<std::int32_t>> topic_partitions(rd_kafka_t* rk, const std::string& topic,
                                                   std::chrono::milliseconds timeout);

// The same, asking again until `timeout` while the topic is unknown: a
// topic just created through one broker reaches the others' metadata a
// moment later, and a client may ask one of those.
result<std::vector<std::int32_t>> await_topic_partitions(rd_kafka_t* rk, const std::string& topic,
                                                         std::chrono::milliseconds timeout);

}  // namespace feed
