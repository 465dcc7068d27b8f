#include "queue/kafka/kafka_subscriber.h"

#include <thread>

#include <fmt/format.h>

#include "base/log.h"
#include "base/thread_name.h"
#include "model/envelope.h"
#include "model/message_id.h"
#include "queue/kafka/topics.h"

namespace feed {

namespace {

// A topic created a moment ago is in the metadata before its partitions
// have settled on their leader; those answers are worth asking again.
bool settling(rd_kafka_resp_err_t err) {
  return err == RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION || err == RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE ||
         err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART || err == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION ||
         err == RD_KAFKA_RESP_ERR_OFFSET_NOT_AVAILABLE || err == RD_KAFKA_RESP_ERR_FENCED_LEADER_EPOCH;
}

result<std::int64_t> end_offset(rd_kafka_t* rk, const std::string& topic, std::int32_t partition,
                                std::chrono::milliseconds bound) {
  const auto deadline = std::chrono::steady_clock::now() + bound;
  for (int attempt = 0;; ++attempt) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    std::int64_t low = 0, high = 0;
    const auto err = rd_kafka_query_watermark_offsets(rk, topic.c_str(), partition, &low, &high,
                                                      std::max(to_ms(left), 1));
    if (!err) return high;
    if (!settling(err) || left.count() <= 0 || attempt >= 100)
      return kafka_error(err, fmt::format("end offset of {}[{}]", topic, partition));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

}  // namespace

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

  auto partitions = await_topic_partitions(rk->get(), options_.processed_topic, options_.admin_timeout);
  if (!partitions) return partitions.err();

  kafka_partitions assignment(rd_kafka_topic_partition_list_new(static_cast<int>(partitions->size())));
  for (const std::int32_t p : *partitions) {
    // An explicit end offset instead of OFFSET_END, which librdkafka resolves
    // lazily: a message stored right after start() returns would be missed.
    auto high = end_offset(rk->get(), options_.processed_topic, p, options_.admin_timeout);
    if (!high) return high.err();
    rd_kafka_topic_partition_list_add(assignment.get(), options_.processed_topic.c_str(), p)->offset = *high;
  }
  if (const auto err = rd_kafka_assign(rk->get(), assignment.get()))
    return kafka_error(err, fmt::format("assigning {}", options_.processed_topic));

  spdlog::info("kafka subscriber: reading {} partitions of {}", partitions->size(), options_.processed_topic);
  rk_ = std::move(*rk);
  running_ = true;
  thread_ = std::thread([this] {
    name_this_thread("kafka-sub");
    run();
  });
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
  auto msg = decode_envelope_message(std::string_view(static_cast<const char*>(m.payload), m.payload ? m.len : 0));
  if (!msg) {
    ++stats_.undecodable;
    spdlog::warn("kafka subscriber: skipping {}[{}]@{}: {}", options_.processed_topic, m.partition, m.offset,
                 msg.err().message);
    return;
  }
  if (msg->seq.value() <= 0) {
    ++stats_.without_seq;
    // What the reference's worker publishes: its row got no seq either, so
    // the message reaches no feed. Said so the operator can find the cause.
    spdlog::warn("kafka subscriber: skipping {}[{}]@{}: message {} has no seq: a worker other than feed-api's "
                 "(the reference's?) stored it, and it reaches no feed; run only feed-api workers in group {}",
                 options_.processed_topic, m.partition, m.offset, msg->id, options_.group_id);
    return;
  }
  out.push_back(std::move(*msg));
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
