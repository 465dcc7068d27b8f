#include "bot/chunked_decoder.h"

#include <algorithm>

namespace feed::bot {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

chunked_decoder::step chunked_decoder::next(std::string_view in, std::size_t& pos, std::string_view& out) {
  while (pos < in.size() || state_ == state::done || state_ == state::error) {
    switch (state_) {
      case state::done: return step::done;
      case state::error: return step::error;
      case state::size: {
        const char c = in[pos];
        const int h = hex_value(c);
        if (h >= 0) {
          if (++digits_ > 15) { state_ = state::error; break; }
          remaining_ = remaining_ * 16 + static_cast<std::uint64_t>(h);
          ++pos;
        } else if (digits_ == 0) {
          state_ = state::error;
        } else if (c == ';' || c == ' ' || c == '\t') {
          state_ = state::size_ext;
          ++pos;
        } else if (c == '\r') {
          state_ = state::size_lf;
          ++pos;
        } else if (c == '\n') {
          ++pos;
          state_ = remaining_ == 0 ? state::trailer_start : state::data;
        } else {
          state_ = state::error;
        }
        break;
      }
      case state::size_ext:
        if (in[pos] == '\n') state_ = remaining_ == 0 ? state::trailer_start : state::data;
        ++pos;
        break;
      case state::size_lf:
        if (in[pos] != '\n') { state_ = state::error; break; }
        ++pos;
        state_ = remaining_ == 0 ? state::trailer_start : state::data;
        break;
      case state::data: {
        const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, in.size() - pos));
        out = in.substr(pos, n);
        pos += n;
        remaining_ -= n;
        if (remaining_ == 0) state_ = state::data_cr;
        return step::data;
      }
      case state::data_cr:
        if (in[pos] == '\r') { state_ = state::data_lf; ++pos; }
        else if (in[pos] == '\n') { ++pos; state_ = state::size; digits_ = 0; }
        else state_ = state::error;
        break;
      case state::data_lf:
        if (in[pos] != '\n') { state_ = state::error; break; }
        ++pos;
        state_ = state::size;
        digits_ = 0;
        break;
      case state::trailer_start:
        // An empty line ends the message; anything else is a trailer field.
        if (in[pos] == '\r') { state_ = state::trailer_lf; ++pos; }
        else if (in[pos] == '\n') { ++pos; state_ = state::done; }
        else state_ = state::trailer_line;
        break;
      case state::trailer_line:
        if (in[pos] == '\n') state_ = state::trailer_start;
        ++pos;
        break;
      case state::trailer_lf:
        if (in[pos] != '\n') { state_ = state::error; break; }
        ++pos;
        state_ = state::done;
        break;
    }
  }
  return step::need_more;
}

}  // namespace feed::bot
