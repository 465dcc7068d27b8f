// publisher onto events-to-process: the API side of the Kafka queue.
//
// Each message becomes one "message.created" envelope keyed by user_id, so
// one author's messages stay in one partition, in order. The producer is
// idempotent with acks=all: `done` fires without error only once every
// in-sync replica has the record, which is what lets the API answer 202.
//
// Threads and callbacks:
// - publish() and ready() may be called from any thread. publish() never
//   blocks: a full local queue (options.queue_max_messages) fails at once
//   with errc::queue_full, from the calling thread.
// - Otherwise `done` runs on the publisher's poll thread, which serves
//   librdkafka's delivery reports, or wherever serve_reports() is called
//   after hand_over_reports(): no error, errc::timeout when the record
//   was not acknowledged within options.delivery_timeout, errc::unavailable
//   for other delivery failures, errc::shutting_down when stop() gave up on
//   it. `done` must not block; it holds up every later report.
// - stop() (also run by the destructor) refuses new messages with
//   errc::shutting_down, waits up to options.flush_timeout for queued
//   records, then fails the rest. Every `done` has run when it returns.
//
// A fatal producer error (reported by librdkafka when idempotence can no
// longer be guaranteed) leaves the publisher failing every call with
// errc::unavailable; restart the process.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "queue/kafka/kafka_options.h"
#include "queue/kafka/rdkafka_handle.h"
#include "queue/queue.h"

namespace feed {

struct kafka_publisher_stats {
  std::atomic<std::uint64_t> published{0};  // acknowledged by the broker
  std::atomic<std::uint64_t> failed{0};     // done called with an error
};

// Where each record's `done` waits for its delivery report: librdkafka
// carries one pointer per record, and a heap-allocated std::function per
// post (made on the event loop, freed on the poll thread) was one malloc
// and one cross-thread free per post. Slots are reused; the pool grows by
// chunks up to the most records ever in flight at once (bounded by
// options.queue_max_messages) and is freed with the publisher.
class done_slots {
 public:
  done_slots() = default;
  done_slots(const done_slots&) = delete;
  done_slots& operator=(const done_slots&) = delete;

  // Stores `done`; the pointer goes to librdkafka as the record's opaque.
  void* put(enqueue_done done);
  // Takes back what put() stored under `opaque` and frees its slot.
  enqueue_done take(void* opaque);

 private:
  struct slot {
    enqueue_done done;  // first: the opaque points at the slot
    slot* next = nullptr;
  };
  static constexpr std::size_t chunk_slots = 256;

  std::mutex mu_;
  slot* free_ = nullptr;                         // GUARDED_BY(mu_)
  std::vector<std::unique_ptr<slot[]>> chunks_;  // GUARDED_BY(mu_)
};

class kafka_publisher final : public queue_writer {
 public:
  // Connects lazily: creation fails only on invalid settings
  // (errc::invalid_input); an unreachable broker shows in ready() and in
  // failed deliveries.
  static result<std::unique_ptr<kafka_publisher>> create(const kafka_options& options);
  ~kafka_publisher() override;
  kafka_publisher(const kafka_publisher&) = delete;
  kafka_publisher& operator=(const kafka_publisher&) = delete;

  void enqueue(message m, enqueue_done done) override;
  // errc::unavailable until the idempotent producer holds a producer id
  // (producer_state.h: posts would wait for it in the local queue, past
  // their timeout on a fresh broker), and when a metadata request for
  // events_topic, bounded by options.ready_timeout and cached for
  // options.ready_cache, finds the broker unreachable or the topic missing.
  result<void> ready() override;
  // A record the producer gave up on before sending it (errc::not_sent)
  // can no longer be written; any other delivery error may hide a write
  // that still lands.
  bool known_not_stored(std::error_code ec) const override {
    return ec == errc::queue_full || ec == errc::not_sent;
  }
  void stop();

  // From now on the caller serves the delivery reports (and so runs every
  // `done`) instead of the poll thread, which this stops: the returned
  // eventfd turns readable when reports wait, and serve_reports() runs
  // them. Call serve_reports() once right after this, since reports that
  // came before are not signalled. The fd stays the publisher's (closed
  // with it); serve_reports() may be called until the destructor runs, also
  // after stop().
  result<int> hand_over_reports();
  // Runs the reports waiting now, without blocking. Any thread.
  void serve_reports();

  const kafka_publisher_stats& stats() const { return stats_; }

 private:
  explicit kafka_publisher(const kafka_options& options);
  static void on_delivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque);
  static int on_statistics(rd_kafka_t*, char* json, std::size_t size, void* opaque);
  result<void> broker_ready();  // the cached metadata probe
  result<void> producer_id();   // from the latest statistics
  void poll_loop();

  const kafka_options options_;
  done_slots slots_;  // outlives rk_, whose records point into it
  kafka_handle rk_;
  kafka_publisher_stats stats_;

  // publish() holds it shared while producing, stop() exclusively to flip
  // stopped_, so no record is produced after stop() begins flushing.
  std::shared_mutex produce_mu_;
  bool stopped_ = false;  // GUARDED_BY(produce_mu_)

  std::atomic<bool> polling_{true};
  std::thread poller_;
  int report_fd_ = -1;  // hand_over_reports()

  std::mutex state_mu_;
  std::string producer_state_;  // GUARDED_BY(state_mu_); empty until reported

  std::mutex ready_mu_;  // also serializes probes: one metadata request at a time
  std::chrono::steady_clock::time_point ready_checked_{};  // GUARDED_BY(ready_mu_)
  result<void> ready_result_;                             // GUARDED_BY(ready_mu_)
};

}  // namespace feed
