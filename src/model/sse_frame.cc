#include "model/sse_frame.h"

#include <fmt/format.h>

namespace feed {

std::string sse_event_frame(const message& m) {
  return fmt::format("id: {}\ndata: {}\n\n", m.seq.value(), to_json(m));
}

}  // namespace feed
