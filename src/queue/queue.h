// The queue between accepting a message and storing it.
//
// Two roles, each an interface with an in-process and a Kafka implementation:
// - publisher: the API hands it an accepted message; `done` fires once the
//   message is durable (committed to the embedded store, or acknowledged by
//   Kafka with acks=all). Only then may the client be told 202.
// - consumer: the worker polls batches, stores them, then commits the batch.
//   Nothing is acknowledged before commit(), so a crash re-delivers.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <system_error>
#include <vector>

#include "base/result.h"
#include "model/message.h"

namespace feed {

// Called exactly once, from any thread: no error when durable, otherwise
// errc::queue_full, errc::unavailable, errc::timeout or errc::shutting_down.
using publish_done = std::function<void(std::error_code)>;

class publisher {
 public:
  virtual ~publisher() = default;
  virtual void publish(message m, publish_done done) = 0;
  // Whether the queue can take messages now (for /api/ready).
  virtual result<void> ready() = 0;
};

struct batch {
  std::vector<message> messages;
  std::uint64_t token = 0;      // identifies the batch to commit()/fail()
  bool end_of_stream = false;   // the queue is closed and drained
};

class consumer {
 public:
  virtual ~consumer() = default;
  // Waits at most `wait` for the first message, returns at most `max`.
  virtual result<batch> poll(std::size_t max, std::chrono::milliseconds wait) = 0;
  // The batch is stored and published downstream: acknowledge it.
  virtual result<void> commit(const batch& b) = 0;
  // The batch could not be stored and will not be retried (shutdown while
  // the store is down): release it with an error where the queue can.
  virtual void fail(const batch& b, std::error_code why) = 0;
};

}  // namespace feed
