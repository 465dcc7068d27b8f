// Where the worker sends messages once they are stored: straight to the
// broadcaster in embedded mode, to the events-processed topic with Kafka.
#pragma once

#include <span>

#include "base/result.h"
#include "model/message.h"

namespace feed {

class processed_sink {
 public:
  virtual ~processed_sink() = default;
  // Blocks until the messages are handed on; may be retried with the same
  // messages (receivers drop duplicates by seq).
  virtual result<void> publish(std::span<const message> stored) = 0;
};

}  // namespace feed
