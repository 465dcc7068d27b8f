// Reader of events-processed for one API instance: every instance must see
// every stored message (to fan it out to its SSE clients), so this reads all
// partitions itself instead of sharing them through a consumer group.
//
// start() looks up the topic's partitions and their current end offsets
// and assigns them directly: only messages stored after start() returns are
// delivered (catching up on older ones is the store's job). Partitions added
// to the topic later are not noticed until the next start. Nothing is ever
// committed. librdkafka's assign API needs a group id, so a unique,
// never-joined one is set; no group membership is created.
//
// Each record is decoded into a message with its seq and handed to the
// handler in batches, in partition order; batches from different partitions
// interleave, so the handler restores the global order by seq and drops
// duplicates. Records without seq or that do not decode are skipped with a
// warning and counted.
//
// Threads: the handler runs on the subscriber's own thread, one call at a
// time; it should not block for long (records queue up meanwhile). start()
// and stop() from one owning thread; stop() (also run by the destructor)
// returns after the last handler call.
#pragma once

#include <atomic>
#include <functional>
#include <thread>
#include <vector>

#include "model/message.h"
#include "queue/kafka/kafka_options.h"
#include "queue/kafka/rdkafka_handle.h"

namespace feed {

using processed_handler = std::function<void(std::vector<message>)>;

struct kafka_subscriber_stats {
  std::atomic<std::uint64_t> delivered{0};    // messages handed to the handler
  std::atomic<std::uint64_t> without_seq{0};  // skipped: envelope had no seq
  std::atomic<std::uint64_t> undecodable{0};  // skipped: not a valid envelope
};

class kafka_subscriber {
 public:
  // `max_batch` bounds the messages of one handler call.
  kafka_subscriber(const kafka_options& options, processed_handler handler, std::size_t max_batch = 1024);
  ~kafka_subscriber();
  kafka_subscriber(const kafka_subscriber&) = delete;
  kafka_subscriber& operator=(const kafka_subscriber&) = delete;

  // errc::unavailable when the broker or the topic is missing,
  // errc::invalid_input on bad settings; bounded by options.admin_timeout
  // per request. Calling start() twice without stop() is an error.
  result<void> start();
  void stop();

  const kafka_subscriber_stats& stats() const { return stats_; }

 private:
  void run();
  // Decodes one record into `out`, or counts why it was skipped.
  void take(const rd_kafka_message_t& m, std::vector<message>& out);

  const kafka_options options_;
  const processed_handler handler_;
  const std::size_t max_batch_;
  kafka_handle rk_;
  kafka_subscriber_stats stats_;
  std::atomic<bool> running_{false};
  std::thread thread_;
};

}  // namespace feed
