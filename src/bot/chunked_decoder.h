// Streaming decoder for HTTP/1.1 chunked transfer coding.
//
// Bytes may be split anywhere. next() hands back one piece of payload at a
// time (a view into the caller's input, no copy), so an SSE stream can be
// parsed straight from the socket buffer. Chunk extensions and trailers are
// skipped. Not thread-safe: one decoder per response.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace feed::bot {

class chunked_decoder {
 public:
  enum class step { data, need_more, done, error };

  // Consumes from in[pos...]; on step::data, `out` is a payload piece and pos
  // has advanced past it. Call again until need_more/done/error.
  step next(std::string_view in, std::size_t& pos, std::string_view& out);

  // Convenience: feeds all of `in`, calling on_data for each piece.
  template <class F>
  step feed(std::string_view in, F&& on_data) {
    std::size_t pos = 0;
    std::string_view piece;
    for (;;) {
      const step s = next(in, pos, piece);
      if (s != step::data) return s;
      on_data(piece);
    }
  }

  void reset() noexcept { *this = chunked_decoder{}; }
  bool done() const noexcept { return state_ == state::done; }

 private:
  enum class state { size, size_ext, size_lf, data, data_cr, data_lf, trailer_start, trailer_line, trailer_lf, done, error };
  state state_ = state::size;
  std::uint64_t remaining_ = 0;
  int digits_ = 0;
};

}  // namespace feed::bot
