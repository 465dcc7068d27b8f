#include "bot/sse_parser.h"

#include <algorithm>

namespace feed::bot {

void sse_parser::reset_partial() noexcept {
  pending_id_ = id_;
  line_.clear();
  data_.clear();
  event_.clear();
  has_data_ = false;
  skip_lf_ = false;
}

void sse_parser::append_partial(std::string_view s) {
  const std::size_t room = kMaxLine - std::min(kMaxLine, line_.size());
  line_.append(s.substr(0, room));
}

bool sse_parser::process_line(std::string_view line) {
  if (line.empty()) {
    // WHATWG: the last event ID is set at the end of an event, with or
    // without data.
    id_ = pending_id_;
    if (!has_data_) {
      event_.clear();
      return false;
    }
    ++events_;
    return true;
  }
  if (line.front() == ':') {
    ++comments_;
    return false;
  }
  std::string_view field = line;
  std::string_view value;
  if (const auto colon = line.find(':'); colon != std::string_view::npos) {
    field = line.substr(0, colon);
    value = line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  }
  if (field == "data") {
    data_.append(value);
    data_.push_back('\n');
    has_data_ = true;
  } else if (field == "id") {
    if (value.find('\0') == std::string_view::npos) pending_id_.assign(value);
  } else if (field == "event") {
    event_.assign(value);
  }
  // "retry" and unknown fields are ignored.
  return false;
}

}  // namespace feed::bot
