// The queue and the store that the configuration asks for, behind their
// interfaces, with the stop actions each needs.
//
// - store: SQLite in --data-dir, or PostgreSQL/CockroachDB at --database-url.
// - queue: in-process (the worker's commit is the 202), or Kafka
//   (events-to-process; the broker's acks=all is the 202).
// - processed path: embedded, the worker hands stored messages straight to
//   the broadcaster; with Kafka it publishes them on events-processed and
//   every instance's subscriber feeds its own broadcaster.
//
// Not thread-safe; built and stopped by the application's main thread.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "config/options.h"
#include "queue/queue.h"
#include "store/store.h"
#include "worker/processed_sink.h"

namespace feed {

class backends {
 public:
  // Opens the store (applying migrations) and, with Kafka, creates missing
  // topics and the producer and consumer. Fails with what could not be done.
  static result<std::unique_ptr<backends>> open(const app_options& opts);
  ~backends();

  store& db() { return *db_; }
  publisher& queue() { return *publisher_; }
  consumer& input() { return *consumer_; }
  bool uses_kafka() const { return kafka_ != nullptr; }
  std::string describe() const { return description_; }

  // Where the worker sends stored messages. Embedded: `deliver` (the
  // broadcaster). Kafka: events-processed; call start_subscriber so that
  // `deliver` receives every instance's stored messages.
  result<processed_sink*> sink(std::function<void(std::vector<message>)> deliver);
  result<void> start_subscriber(std::function<void(std::vector<message>)> deliver);

  // Shutdown steps, in this order: no new messages (flushes what Kafka still
  // holds), then the consumer reports end of stream so the worker drains,
  // then the subscriber stops.
  void stop_publishing();
  void close_input();
  void stop_subscriber();

 private:
  struct kafka_parts;
  class direct_sink;
  backends() = default;

  std::unique_ptr<store> db_;
  std::unique_ptr<kafka_parts> kafka_;        // set in Kafka mode
  std::unique_ptr<class memory_queue> memory_;  // set in embedded mode
  std::unique_ptr<direct_sink> direct_;
  publisher* publisher_ = nullptr;
  consumer* consumer_ = nullptr;
  std::string description_;
};

}  // namespace feed
