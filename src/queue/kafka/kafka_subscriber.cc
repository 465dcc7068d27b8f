#include "queue/kafka/kafka_subscriber.h"

#include <fmt/format.h>

#include "base/log.h"
#include "model/envelope.h"
#include "model/message_id.h"
#include "queue/kafka/topics.h"

namespace feed {

kafka_subscriber::kafka_subscriber(const kafka_options& options, processed_handler handler, std::size_t max_batch)
    : options_(options), handler_(std::move(handler)), max_batch_(std::max<std::size_t>(max_batch, 1)) {}

kafka_subscriber::~kafka_subscriber() { stop(); }

result<void> kafka_subscriber::start() {
  if (rk_) return error(errc::invalid_input, "kafka subscriber already started");
  auto rk = make_handle(RD_KAFKA_CONSUMER, options_, "subscriber",
                        {
                            {"group.id", fmt::format("{}-subscriber-{}", options_.client_id, random_message_id())},
                            {"enable.auto.commit", "false"},
                            {"enable.auto.offset.store", "false"},
                            // Only reached when a partition's offset vanishes (retention);
                            // new messages are what this reader is for.
                            {"auto.offset.reset", "latest"},
                            {"enable.partition.eof", "false"},
                            {"fetch.wait.max.ms", "100"},
                        });
  if (!rk) return rk.err();
  rd_kafka_poll_set_consumer(rk->get());

  auto partitions = topic_partitions(rk->get(), options_.processed_topic, options_.admin_timeout);
  if (!partitions) return partitions.err();

  kafka_partitions assignment(rd_kafka_topic_partition_list_new(static_cast<int>(partitions->size())));
  for (const std::int32_t p : *partitions) {
    // An explicit end offset instead of OFFSET_END, which librdkafka resolves
    // lazily: a message stored right after start() returns would be missed.
    std::int64_t low = 0, high = 0;
    const auto err = rd_kafka_query_watermark_offsets(rk->get(), options_.processed_topic.c_str(), p, &low, &high,
                                                      to_ms(options_.admin_timeout));
    if (err) return kafka_error(err, fmt::format("end offset of {}[{}]", options_.processed_topic, p));
    rd_kafka_topic_partition_list_add(assignment.get(), options_.processed_topic.c_str(), p)->offset = high;
  }
  if (const auto err = rd_kafka_assign(rk->get(), assignment.get()))
    return kafka_error(err, fmt::format("assigning {}", options_.processed_topic));

  spdlog::info("kafka subscriber: reading {} partitions of {}", partitions->size(), options_.processed_topic);
  rk_ = std::move(*rk);
  running_ = true;
  thread_ = std::thread([this] { run(); });
  return {};
}

void kafka_subscriber::stop() {
  running_ = false;
  if (thread_.joinable()) thread_.join();
  if (rk_) {
    close_consumer(rk_.get(), options_.session_timeout);
    rk_.reset();
  }
}

void kafka_subscriber::take(const rd_kafka_message_t& m, std::vector<message>& out) {
  if (m.err) {
    spdlog::warn("kafka subscriber: {}", rd_kafka_err2str(m.err));
    return;
  }
  auto e = decode_envelope(std::string_view(static_cast<const char*>(m.payload), m.payload ? m.len : 0));
  if (!e) {
    ++stats_.undecodable;
    spdlog::warn("kafka subscriber: skipping {}[{}]@{}: {}", options_.processed_topic, m.partition, m.offset,
                 e.err().message);
    return;
  }
  if (e->msg.seq.value() <= 0) {
    ++stats_.without_seq;
    spdlog::warn("kafka subscriber: skipping {}[{}]@{}: message {} has no seq", options_.processed_topic,
                 m.partition, m.offset, e->msg.id);
    return;
  }
  out.push_back(std::move(e->msg));
}

void kafka_subscriber::run() {
  while (running_.load(std::memory_order_relaxed)) {
    // The timeout only bounds how late a stop() is noticed.
    kafka_message first(rd_kafka_consumer_poll(rk_.get(), 100));
    if (!first) continue;
    std::vector<message> batch;
    take(*first, batch);
    // Bounded in records read, not only in messages kept, so a run of
    // skipped records still returns to check running_.
    for (std::size_t read = 1; read < 2 * max_batch_ && batch.size() < max_batch_; ++read) {
      kafka_message more(rd_kafka_consumer_poll(rk_.get(), 0));
      if (!more) break;
      take(*more, batch);
    }
    if (batch.empty()) continue;
    stats_.delivered += batch.size();
    handler_(std::move(batch));
  }
}

}  // namespace feed
