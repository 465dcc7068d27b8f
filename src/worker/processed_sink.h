// Where the worker sends messages once they are stored: straight to the
// broadcaster in embedded mode, to the events-processed topic with Kafka.
#pragma once

#include <chrono>
#include <span>
#include <vector>

#include "base/result.h"
#include "model/message.h"

namespace feed {

class processed_sink {
 public:
  virtual ~processed_sink() = default;
  // Blocks until the messages are handed on; may be retried with the same
  // messages (receivers drop duplicates by seq).
  virtual result<void> send(std::span<const message> stored) = 0;
  // The same, from a caller that no longer needs the messages: a sink that
  // keeps them (the in-process one) takes them instead of copying every
  // string. On failure `stored` is left as it was, so it can be retried.
  virtual result<void> send_owned(std::vector<message>& stored) { return send(stored); }
  // From `deadline` on, a send still waiting (for a broker's acknowledgement)
  // gives up, and later ones fail at once. Any thread.
  virtual void stop_waiting_at(std::chrono::steady_clock::time_point deadline) { (void)deadline; }
};

}  // namespace feed
