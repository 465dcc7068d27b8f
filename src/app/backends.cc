#include "app/backends.h"

#include <algorithm>

#include <fmt/format.h>

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

struct backends::kafka_parts {
  kafka_options options;
  std::unique_ptr<kafka_publisher> publisher;
  std::unique_ptr<kafka_consumer> consumer;
  std::unique_ptr<kafka_processed_sink> sink;
  std::unique_ptr<kafka_subscriber> subscriber;
};

class backends::direct_sink final : public processed_sink {
 public:
  explicit direct_sink(std::function<void(std::vector<message>)> deliver) : deliver_(std::move(deliver)) {}
  result<void> publish(std::span<const message> stored) override {
    deliver_({stored.begin(), stored.end()});
    return {};
  }

 private:
  std::function<void(std::vector<message>)> deliver_;
};

backends::~backends() {
  stop_publishing();
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
    k->options = opts.kafka;
    k->options.brokers = opts.kafka_brokers;
    if (auto r = ensure_topics(k->options); !r) return error(r.err().code, "kafka topics: " + r.err().message);
    auto p = kafka_publisher::create(k->options);
    if (!p) return error(p.err().code, "kafka producer: " + p.err().message);
    k->publisher = std::move(*p);
    auto c = kafka_consumer::create(k->options);
    if (!c) return error(c.err().code, "kafka consumer: " + c.err().message);
    k->consumer = std::move(*c);
    b->publisher_ = k->publisher.get();
    b->consumer_ = k->consumer.get();
    queue_text = fmt::format("Kafka {} (topics {}, {}; group {})", k->options.brokers, k->options.events_topic,
                             k->options.processed_topic, k->options.group_id);
    b->kafka_ = std::move(k);
  } else {
    b->memory_ = std::make_unique<memory_queue>(opts.queue_capacity);
    b->publisher_ = b->memory_.get();
    b->consumer_ = b->memory_.get();
    queue_text = fmt::format("in-process queue of {}", opts.queue_capacity);
  }
  b->description_ = store_text + ", " + queue_text;
  return b;
}

result<processed_sink*> backends::sink(std::function<void(std::vector<message>)> deliver) {
  if (!kafka_) {
    direct_ = std::make_unique<direct_sink>(std::move(deliver));
    return static_cast<processed_sink*>(direct_.get());
  }
  // The API's short delivery bound is for answering clients; the worker's
  // processed events may take longer under load (a failure only retries).
  kafka_options sink_options = kafka_->options;
  sink_options.delivery_timeout = std::max(sink_options.delivery_timeout, std::chrono::milliseconds(10000));
  auto s = kafka_processed_sink::create(sink_options);
  if (!s) return error(s.err().code, "kafka processed sink: " + s.err().message);
  kafka_->sink = std::move(*s);
  return static_cast<processed_sink*>(kafka_->sink.get());
}

result<void> backends::start_subscriber(std::function<void(std::vector<message>)> deliver) {
  if (!kafka_) return {};
  kafka_->subscriber = std::make_unique<kafka_subscriber>(kafka_->options, std::move(deliver));
  if (auto r = kafka_->subscriber->start(); !r) return error(r.err().code, "kafka subscriber: " + r.err().message);
  return {};
}

void backends::stop_publishing() {
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
