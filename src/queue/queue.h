// The queue between accepting a message and storing it.
//
// Two roles, each an interface with an in-process and a Kafka implementation:
// - queue_writer: the API enqueues an accepted message; `done` fires once the
//   message is durable (committed to the embedded store, or acknowledged by
//   Kafka with acks=all). Only then may the client be told 202.
// - queue_reader: the worker polls batches, stores them, then commits the batch.
//   Nothing is acknowledged before commit(), so a crash re-delivers.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include "base/result.h"
#include "model/message.h"

namespace feed {

// Called exactly once, from any thread: no error when durable, otherwise
// errc::queue_full, errc::unavailable, errc::timeout or errc::shutting_down.
using enqueue_done = std::function<void(std::error_code)>;

class queue_writer {
 public:
  virtual ~queue_writer() = default;
  virtual void enqueue(message m, enqueue_done done) = 0;
  // Whether the queue can take messages now (for /api/ready).
  virtual result<void> ready() = 0;

  // Takes back every message with this id that is still waiting for a
  // consumer, so none of them will be stored; their `done` is called with
  // errc::timeout. False, taking back nothing, when there was none or when
  // a copy (posts with one Idempotency-Key share the id) was taken already
  // and may be stored; also false with a queue that cannot withdraw.
  virtual bool withdraw(const std::string& id) {
    (void)id;
    return false;
  }

  // Whether a message whose `done` got `ec` is certainly not stored. A
  // refusal at the door is final everywhere; a broker's delivery error may
  // hide a write that still lands.
  virtual bool known_not_stored(std::error_code ec) const { return ec == errc::queue_full; }

  // Whether `done` fires only once the message is stored, with
  // errc::key_conflict when the store kept other content under its id (the
  // in-process queue). A broker acknowledges before anything is stored.
  virtual bool settles_at_storage() const { return false; }
};

struct batch {
  std::vector<message> messages;
  std::uint64_t token = 0;      // identifies the batch to commit()/fail()
  bool end_of_stream = false;   // the queue is closed and drained
  // Set by the worker before commit(): positions in `messages` whose id was
  // stored with other content (a reused Idempotency-Key), so this content
  // was dropped. A queue that answers its writers at commit tells them
  // errc::key_conflict instead of success.
  std::vector<std::size_t> dropped;
};

class queue_reader {
 public:
  virtual ~queue_reader() = default;
  // Waits at most `wait` for the first message, returns at most `max`.
  virtual result<batch> poll(std::size_t max, std::chrono::milliseconds wait) = 0;
  // The batches, in the order they were polled, are stored and sent
  // downstream: acknowledge them, in one round trip where the queue has one
  // (a Kafka offset commit is one per call, and took 5 ms here).
  virtual result<void> commit(std::span<const batch> batches) = 0;
  result<void> commit(const batch& b) { return commit(std::span<const batch>(&b, 1)); }
  // The batch could not be stored and will not be retried (shutdown while
  // the store is down): release it with an error where the queue can.
  virtual void fail(const batch& b, std::error_code why) = 0;
  // From `deadline` on, waits for the queue (a commit's answer, the close
  // that follows) give up: the next reader gets what was not committed.
  virtual void stop_waiting_at(std::chrono::steady_clock::time_point deadline) { (void)deadline; }
};

}  // namespace feed
