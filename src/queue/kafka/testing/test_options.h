// Kafka options for one test against a real broker: fresh topic and group
// names, so that tests run one after another (or at once) never read each
// other's records, and bounds short enough for a test.
#pragma once

#include <chrono>
#include <string>

#include "model/message_id.h"
#include "queue/kafka/kafka_options.h"

namespace feed {

inline kafka_options kafka_test_options(const std::string& brokers, const std::string& prefix = "test") {
  using namespace std::chrono_literals;
  // The id's random tail: its head is a UUIDv7 timestamp, the same for
  // every test started within about a minute, which then shared topics.
  const std::string tag = random_message_id().substr(24);
  kafka_options o;
  o.brokers = brokers;
  o.client_id = "feed-test";
  o.group_id = prefix + "-group-" + tag;
  o.events_topic = prefix + "-events-" + tag;
  o.processed_topic = prefix + "-processed-" + tag;
  o.linger = 2ms;
  o.delivery_timeout = 10s;
  o.session_timeout = 6s;
  o.flush_timeout = 5s;
  return o;
}

}  // namespace feed
