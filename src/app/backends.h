// The queue and the store that the configuration asks for, behind their
// interfaces, with the stop actions each needs.
//
// - store: SQLite in --data-dir, or PostgreSQL/CockroachDB at --database-url.
// - queue: in-process (the worker's commit is the 202), or Kafka
//   (events-to-process; the broker's acks=all is the 202).
// - processed path: embedded, the worker hands stored messages straight to
//   the receiver given to deliver_to(); with Kafka it sends them to
//   events-processed and every instance's subscriber feeds its own receiver.
//
// Kafka mode starts the subscriber before the receiver (the broadcaster)
// exists, so that every message stored after start-up arrives as an event;
// what arrives meanwhile is held and handed over first by deliver_to().
// Embedded mode holds nothing: the worker's calls go straight through.
//
// Not thread-safe; built and stopped by the application's main thread. The
// receiver is called from the worker's send thread (embedded) or the
// subscriber's thread (Kafka), one call at a time.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config/options.h"
#include "metrics/metrics.h"
#include "queue/queue.h"
#include "store/store.h"
#include "worker/processed_sink.h"

namespace feed {

class kafka_publisher;

class backends {
 public:
  using receiver = std::function<void(std::vector<message>)>;

  // Opens the store (applying migrations) and, with Kafka, creates missing
  // topics and the producer and consumer. Fails with what could not be done.
  static result<std::unique_ptr<backends>> open(const app_options& opts);
  ~backends();

  store& db() { return *db_; }
  queue_writer& writer() { return *writer_; }
  queue_reader& reader() { return *reader_; }
  bool uses_kafka() const { return kafka_ != nullptr; }
  // Kafka mode's producer of accepted posts; null when embedded.
  kafka_publisher* publisher() const;
  std::string describe() const { return description_; }

  // Kafka: starts reading events-processed, holding what arrives until
  // deliver_to(). Embedded: nothing to start.
  result<void> start_subscriber();
  // From now on every stored message goes to `deliver`, once per call of the
  // worker's sink (embedded) or of the subscriber (Kafka, after what it
  // held). Call once, before sink().
  void deliver_to(receiver deliver);
  // Where the worker sends stored messages: the receiver (embedded) or
  // events-processed (Kafka).
  result<processed_sink*> sink();

  // The Kafka clients' counters, as feed_kafka_* series (Kafka mode only;
  // embedded registers nothing). Call after sink() and start_subscriber();
  // `m` must not be rendered after this object is destroyed.
  void register_metrics(metrics& m) const;

  // Shutdown steps, in this order: no new messages (flushes what Kafka still
  // holds), then the consumer reports end of stream so the worker drains,
  // then the subscriber stops. Each may be called again; it does nothing.
  void stop_enqueueing();
  void close_input();
  void stop_subscriber();

 private:
  struct kafka_parts;
  class direct_sink;
  class held_deliveries;
  backends() = default;

  std::unique_ptr<store> db_;
  std::unique_ptr<kafka_parts> kafka_;          // set in Kafka mode
  std::unique_ptr<class memory_queue> memory_;  // set in embedded mode
  std::unique_ptr<direct_sink> direct_;         // embedded mode, from deliver_to()
  queue_writer* writer_ = nullptr;
  queue_reader* reader_ = nullptr;
  std::string description_;
};

}  // namespace feed
