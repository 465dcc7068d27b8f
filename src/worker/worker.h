// The worker: moves messages from the queue into the store, in batches.
//
// Three stages on three threads, so a batch's store transaction overlaps the
// next batch's poll (and decoding; unless poll_ahead is off) and the
// previous batch's round trips to the queue:
//   poll stage:    take a batch from the queue
//   store stage:   store it (idempotent, assigns seq)
//   send stage:    hand the stored messages to the processed sink, then
//                  commit the batch to the queue
// Batches pass between them in order through hand-offs of `pipeline_depth`
// slots, so processed events and commits keep seq order. A stage takes every
// batch waiting for it at once (up to max_batch messages): one transaction
// or one send for all of them, then a commit per batch, in order. A failing store,
// sink or commit is retried with capped exponential backoff and nothing is
// committed meanwhile, so the queue absorbs the outage. stop() lets the
// stages drain the queue until it reports end_of_stream, bounded by a
// deadline.
//
// Idempotency conflicts: the API refuses a reused Idempotency-Key with other
// content when it can see the first post (stored, or in flight in the same
// process). Two instances accepting both at once, a reuse after Kafka
// acknowledged the first but before it was stored, or a post whose store
// lookup ran out of time reach the store, which keeps the first; the worker
// logs each such drop, counts it, and marks it in its batch, so that the
// in-process queue answers that post 422 rather than 202.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "queue/queue.h"
#include "store/store.h"
#include "worker/handoff.h"
#include "worker/processed_sink.h"

namespace feed {

struct worker_options {
  // Messages per store transaction, at most. Batches only grow this large
  // when a backlog waits, so the bound costs no latency at low load; 4096
  // drained a Kafka backlog into PostgreSQL 1.4x faster than 512.
  std::size_t max_batch = 4096;
  std::chrono::milliseconds poll_wait{50};              // idle poll interval
  std::chrono::milliseconds retry_initial{20};          // first backoff
  std::chrono::milliseconds retry_max{2000};            // backoff cap
  std::size_t pipeline_depth = 2;                       // batches waiting between two stages
  // Whether the poll stage polls while a batch is being stored (worth it
  // when polling costs work of its own, such as decoding), or only when the
  // store stage waits for the next batch: then what arrives meanwhile
  // waits in the queue and comes out as one batch, without a wake-up of the
  // poll thread per message or two.
  bool poll_ahead = true;
};

struct worker_stats {
  std::atomic<std::uint64_t> batches{0};
  std::atomic<std::uint64_t> stored{0};
  std::atomic<std::uint64_t> retries{0};
  // Messages dropped because their id (from an Idempotency-Key) was stored
  // with other content.
  std::atomic<std::uint64_t> idempotency_conflicts{0};
};

class worker {
 public:
  worker(queue_reader& in, store& db, processed_sink& out, worker_options opts);
  ~worker();
  worker(const worker&) = delete;
  worker& operator=(const worker&) = delete;

  void start();
  // Returns once the queue reported end_of_stream (close it first) or the
  // deadline passed; a batch still failing then is released with an error.
  void stop(std::chrono::steady_clock::time_point deadline);

  const worker_stats& stats() const { return stats_; }

 private:
  struct stored_batches {
    std::vector<batch> batches;   // as polled, messages moved out; for commit()/fail()
    std::vector<message> stored;  // all of their messages as stored, in seq order
    std::size_t inserted = 0;     // rows the store added for them
  };
  void fail_all(const std::vector<batch>& batches);
  // Positions in `sent` whose id was stored with other content; each is
  // counted and logged.
  std::vector<std::size_t> find_conflicts(const std::vector<message>& sent, const std::vector<message>& stored);
  static void mark_dropped(std::vector<batch>& group, const std::vector<std::size_t>& sizes,
                           const std::vector<std::size_t>& dropped);
  void poll_stage();
  void store_stage();
  void send_stage();
  template <class F>
  bool retry(const char* what, F&& attempt);
  // Sleeps `backoff`, or until the stop deadline if that comes first.
  void back_off(std::chrono::milliseconds backoff);

  queue_reader& in_;
  store& db_;
  processed_sink& out_;
  const worker_options opts_;
  worker_stats stats_;
  std::atomic<bool> stopping_{false};
  std::atomic<std::chrono::steady_clock::time_point> deadline_{std::chrono::steady_clock::time_point::max()};
  std::mutex stop_mu_;  // with stop_cv_: wakes a back-off when the stop begins
  std::condition_variable stop_cv_;
  handoff<batch> polled_;
  handoff<stored_batches> stored_;
  std::thread poll_thread_;
  std::thread store_thread_;
  std::thread send_thread_;
};

}  // namespace feed
