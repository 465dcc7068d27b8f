// processed_sink onto events-processed: the worker hands every stored
// message, with its seq, to all API instances through this topic.
//
// send() produces one "message.processed" envelope per message (key =
// user_id, so an author's messages stay ordered within a partition; readers
// restore the global order by seq) and blocks until every record of the call
// is acknowledged by all in-sync replicas, at most options.delivery_timeout
// plus a second. Any failure is errc::unavailable so the worker retries the
// whole call; records of a failed call may still arrive later, and readers
// drop the duplicates by seq.
//
// Threads: send() may be called from several threads; delivery reports
// are served by whichever caller is waiting. The destructor waits up to
// options.flush_timeout for records still queued.
#pragma once

#include <atomic>
#include <memory>

#include "base/stop_deadline.h"
#include "queue/kafka/kafka_options.h"
#include "queue/kafka/rdkafka_handle.h"
#include "worker/processed_sink.h"

namespace feed {

struct kafka_processed_sink_stats {
  std::atomic<std::uint64_t> sent{0};  // records acknowledged by all in-sync replicas
};

class kafka_processed_sink final : public processed_sink {
 public:
  // Fails only on invalid settings (errc::invalid_input).
  static result<std::unique_ptr<kafka_processed_sink>> create(const kafka_options& options);
  ~kafka_processed_sink() override;
  kafka_processed_sink(const kafka_processed_sink&) = delete;
  kafka_processed_sink& operator=(const kafka_processed_sink&) = delete;

  result<void> send(std::span<const message> stored) override;
  void stop_waiting_at(std::chrono::steady_clock::time_point deadline) override { give_up_.set(deadline); }

  std::uint64_t sent() const { return stats_.sent; }
  const kafka_processed_sink_stats& stats() const { return stats_; }

 private:
  explicit kafka_processed_sink(const kafka_options& options);
  static void on_delivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque);

  const kafka_options options_;
  kafka_handle rk_;
  kafka_processed_sink_stats stats_;
  stop_deadline give_up_;  // stop_waiting_at's
};

}  // namespace feed
