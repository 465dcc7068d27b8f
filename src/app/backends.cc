#include "app/backends.h"

#include <algorithm>
#include <cassert>
#include <iterator>
#include <mutex>
#include <utility>

#include <fmt/format.h>

#include "app/kafka_metrics.h"
#include "base/log.h"
#include "queue/kafka/kafka_consumer.h"
#include "queue/kafka/kafka_processed_sink.h"
#include "queue/kafka/kafka_publisher.h"
#include "queue/kafka/kafka_subscriber.h"
#include "queue/kafka/topics.h"
#include "queue/memory/memory_queue.h"
#include "store/pg/pg_store.h"
#include "store/sqlite/sqlite_store.h"

namespace feed {

// What the subscriber delivers before the receiver exists is held here and
// handed over, in order, when it is named; later deliveries pass straight
// through, still under the lock so that none overtakes the held ones.
class backends::held_deliveries {
 public:
  void deliver(std::vector<message> stored) {
    std::lock_guard lock(mu_);
    if (receiver_) {
      receiver_(std::move(stored));
    } else {
      held_.insert(held_.end(), std::make_move_iterator(stored.begin()), std::make_move_iterator(stored.end()));
    }
  }

  void deliver_to(receiver r) {
    std::lock_guard lock(mu_);
    receiver_ = std::move(r);
    if (!held_.empty()) receiver_(std::exchange(held_, {}));
  }

 private:
  std::mutex mu_;
  receiver receiver_;          // GUARDED_BY(mu_)
  std::vector<message> held_;  // GUARDED_BY(mu_)
};

struct backends::kafka_parts {
  kafka_options options;       // every client's, but the processed sink's
  kafka_options sink_options;  // the processed sink's
  std::unique_ptr<kafka_publisher> publisher;
  std::unique_ptr<kafka_consumer> consumer;
  std::unique_ptr<kafka_processed_sink> sink;
  held_deliveries held;  // outlives the subscriber that feeds it
  std::unique_ptr<kafka_subscriber> subscriber;
};

class backends::direct_sink final : public processed_sink {
 public:
  explicit direct_sink(receiver deliver) : deliver_(std::move(deliver)) {}
  result<void> send(std::span<const message> stored) override {
    deliver_({stored.begin(), stored.end()});
    return {};
  }
  result<void> send_owned(std::vector<message>& stored) override {
    deliver_(std::move(stored));
    stored.clear();
    return {};
  }

 private:
  const receiver deliver_;
};

namespace {

// The app-wide settings the Kafka clients take from outside opts.kafka.
void derive_kafka_settings(const app_options& opts, kafka_options& clients, kafka_options& sink) {
  clients = opts.kafka;
  clients.brokers = opts.kafka_brokers;
  clients.processed_partitions = clients.events_partitions;
  clients.queue_max_messages = static_cast<int>(opts.queue_capacity);
  // A record Kafka has not acknowledged when the API gives up (503) should
  // not be delivered much later: bound its life by the same wait.
  clients.delivery_timeout = opts.api.publish_timeout;
  sink = clients;
  sink.delivery_timeout = std::max(opts.processed_delivery_timeout, opts.api.publish_timeout);
}

}  // namespace

backends::~backends() {
  stop_enqueueing();
  close_input();
  stop_subscriber();
}

result<std::unique_ptr<backends>> backends::open(const app_options& opts) {
  std::unique_ptr<backends> b(new backends());
  std::string store_text, queue_text;

  if (!opts.database_url.empty()) {
    pg_options pg;
    pg.url = opts.database_url;
    pg.pool_size = opts.db_pool_size;
    auto s = pg_store::open(pg);
    if (!s) return error(s.err().code, "database: " + s.err().message);
    b->db_ = std::move(*s);
    store_text = "PostgreSQL-wire store";
  } else {
    auto s = sqlite_store::open({opts.data_dir / "feed.db", opts.sqlite_synchronous});
    if (!s) return error(s.err().code, "embedded store: " + s.err().message);
    b->db_ = std::move(*s);
    store_text = "SQLite store " + (opts.data_dir / "feed.db").string();
  }

  if (!opts.kafka_brokers.empty()) {
    auto k = std::make_unique<kafka_parts>();
    derive_kafka_settings(opts, k->options, k->sink_options);
    if (auto r = ensure_topics(k->options); !r) return error(r.err().code, "kafka topics: " + r.err().message);
    auto p = kafka_publisher::create(k->options);
    if (!p) return error(p.err().code, "kafka producer: " + p.err().message);
    k->publisher = std::move(*p);
    auto c = kafka_consumer::create(k->options);
    if (!c) return error(c.err().code, "kafka consumer: " + c.err().message);
    k->consumer = std::move(*c);
    b->writer_ = k->publisher.get();
    b->reader_ = k->consumer.get();
    queue_text = fmt::format("Kafka {} (topics {}, {}; group {})", k->options.brokers, k->options.events_topic,
                             k->options.processed_topic, k->options.group_id);
    b->kafka_ = std::move(k);
  } else {
    b->memory_ = std::make_unique<memory_queue>(opts.queue_capacity);
    b->writer_ = b->memory_.get();
    b->reader_ = b->memory_.get();
    queue_text = fmt::format("in-process queue of {}", opts.queue_capacity);
  }
  b->description_ = store_text + ", " + queue_text;
  return b;
}

kafka_publisher* backends::publisher() const { return kafka_ ? kafka_->publisher.get() : nullptr; }

result<void> backends::start_subscriber() {
  if (!kafka_) return {};
  auto hold = [held = &kafka_->held](std::vector<message> stored) { held->deliver(std::move(stored)); };
  kafka_->subscriber = std::make_unique<kafka_subscriber>(kafka_->options, std::move(hold));
  if (auto r = kafka_->subscriber->start(); !r) return error(r.err().code, "kafka subscriber: " + r.err().message);
  return {};
}

void backends::deliver_to(receiver deliver) {
  if (kafka_) {
    kafka_->held.deliver_to(std::move(deliver));
  } else {
    direct_ = std::make_unique<direct_sink>(std::move(deliver));
  }
}

result<processed_sink*> backends::sink() {
  if (!kafka_) {
    assert(direct_ && "deliver_to() names the receiver before sink()");
    return static_cast<processed_sink*>(direct_.get());
  }
  auto s = kafka_processed_sink::create(kafka_->sink_options);
  if (!s) return error(s.err().code, "kafka processed sink: " + s.err().message);
  kafka_->sink = std::move(*s);
  return static_cast<processed_sink*>(kafka_->sink.get());
}

void backends::register_metrics(metrics& m) const {
  if (!kafka_) return;
  assert(kafka_->sink && kafka_->subscriber && "register_metrics() after sink() and start_subscriber()");
  register_kafka_metrics(m, {kafka_->publisher->stats(), kafka_->consumer->stats(), kafka_->sink->stats(),
                             kafka_->subscriber->stats()});
}

void backends::stop_enqueueing() {
  if (kafka_ && kafka_->publisher) kafka_->publisher->stop();
  if (memory_) memory_->close();
}

void backends::close_input() {
  if (kafka_ && kafka_->consumer) kafka_->consumer->close();
  if (memory_) memory_->close();
}

void backends::stop_subscriber() {
  if (kafka_ && kafka_->subscriber) kafka_->subscriber->stop();
}

}  // namespace feed
