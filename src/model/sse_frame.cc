#include "model/sse_frame.h"

#include <charconv>
#include <cstring>

#include "model/message_json.h"

namespace feed {

// Every stored message is framed once, on the broadcaster's thread, whether
// or not anyone is subscribed (the hubs keep recent frames for resumes), so
// the frame is sized first and written in place: one allocation per event.
void append_sse_event_frame(std::string& out, const message& m) {
  char id[24];
  const auto id_len = static_cast<std::size_t>(std::to_chars(id, id + sizeof id, m.seq.value()).ptr - id);
  constexpr std::string_view head = "id: ", data = "\ndata: ", tail = "\n\n";
  const auto at = out.size();
  const auto layout = json_layout_of(m);
  out.resize(at + head.size() + id_len + data.size() + layout.size + tail.size());
  char* p = out.data() + at;
  std::memcpy(p, head.data(), head.size()), p += head.size();
  std::memcpy(p, id, id_len), p += id_len;
  std::memcpy(p, data.data(), data.size()), p += data.size();
  p = write_json(p, m, layout);
  std::memcpy(p, tail.data(), tail.size());
}

std::string sse_event_frame(const message& m) {
  std::string out;
  append_sse_event_frame(out, m);
  return out;
}

}  // namespace feed
