// Incremental Server-Sent Events parser (WHATWG event-stream rules).
//
// Feed it bytes as they arrive, split anywhere; it calls on_event(const
// sse_event&) once per complete event. Lines may end in LF, CRLF or CR;
// comment lines (":...") are counted, not dispatched; several data lines are
// joined with '\n'; "id" persists as the last event id, as a browser would,
// from the blank line that ends its event on: an event cut off before it
// (a stream lost mid-event) moves nothing, so the stream resumes before it.
//
// Buffers are reused between events, so steady-state parsing does not
// allocate. The string_views in sse_event are valid only during the callback.
// Not thread-safe: one parser per connection.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace feed::bot {

struct sse_event {
  std::string_view id;     // last event id of the stream, this event's included (may be empty)
  std::string_view event;  // event type; empty means "message"
  std::string_view data;
};

class sse_parser {
 public:
  // Longer lines are truncated; protects against a stream that never ends a line.
  static constexpr std::size_t kMaxLine = 1 << 20;

  template <class F>
  void feed(std::string_view chunk, F&& on_event) {
    std::size_t pos = 0;
    if (skip_lf_ && !chunk.empty()) {
      skip_lf_ = false;
      if (chunk[0] == '\n') pos = 1;
    }
    while (pos < chunk.size()) {
      const std::size_t end = line_end(chunk, pos);
      if (end == std::string_view::npos) {
        append_partial(chunk.substr(pos));
        return;
      }
      bool dispatch;
      if (line_.empty()) {
        dispatch = process_line(chunk.substr(pos, end - pos));
      } else {
        append_partial(chunk.substr(pos, end - pos));
        dispatch = process_line(line_);
        line_.clear();
      }
      if (chunk[end] == '\r') {
        if (end + 1 == chunk.size()) {
          skip_lf_ = true;
          pos = end + 1;
        } else {
          pos = end + (chunk[end + 1] == '\n' ? 2 : 1);
        }
      } else {
        pos = end + 1;
      }
      if (dispatch) {
        on_event(sse_event{id_, event_, std::string_view(data_).substr(0, data_.size() - 1)});
        data_.clear();
        event_.clear();
        has_data_ = false;
      }
    }
  }

  // Forget any partial line or event (e.g. after a reconnect), an id it set
  // included. Keeps last_event_id.
  void reset_partial() noexcept;

  const std::string& last_event_id() const noexcept { return id_; }
  std::uint64_t comments() const noexcept { return comments_; }
  std::uint64_t events() const noexcept { return events_; }

 private:
  void append_partial(std::string_view s);
  // The first CR or LF at or after pos, or npos. Two memchr passes: the
  // library's find_first_of calls memchr once per byte of the haystack,
  // which made it most of feed-bot's CPU at high delivery rates.
  static std::size_t line_end(std::string_view chunk, std::size_t pos) noexcept {
    const char* begin = chunk.data() + pos;
    const std::size_t n = chunk.size() - pos;
    const auto* lf = static_cast<const char*>(std::memchr(begin, '\n', n));
    const std::size_t until = lf ? static_cast<std::size_t>(lf - begin) : n;
    if (const auto* cr = static_cast<const char*>(std::memchr(begin, '\r', until))) return pos + (cr - begin);
    return lf ? pos + until : std::string_view::npos;
  }
  // Returns true when the line ends an event that has data.
  bool process_line(std::string_view line);

  std::string line_;
  std::string data_;
  std::string event_;
  std::string id_;          // the last event id: set when an event ends
  std::string pending_id_;  // the id of the event being read, until it ends
  bool has_data_ = false;
  bool skip_lf_ = false;
  std::uint64_t comments_ = 0;
  std::uint64_t events_ = 0;
};

}  // namespace feed::bot
