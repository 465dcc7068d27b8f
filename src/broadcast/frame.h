// An SSE frame, serialized once and shared by every subscriber that sends it.
#pragma once

#include <memory>
#include <string>

#include "base/named_type.h"

namespace feed {

struct frame {
  std::string bytes;    // complete SSE event or comment, ends with "\n\n"
  std::string user_id;  // author, for ?user_id= filters; empty = everyone
  seq_t seq;            // the event's seq; 0 for comments (heartbeats)
};

using frame_ptr = std::shared_ptr<const frame>;

}  // namespace feed
