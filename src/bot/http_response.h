// Minimal HTTP/1.1 response-head parser for the bot's client connections.
//
// Understands what the bot needs and nothing more: the status code, body
// framing (Content-Length, chunked, or read-until-close), Connection: close,
// Retry-After in seconds (an HTTP-date falls back to 1 s), and whether the
// body is an event stream.
// Pure function over a buffer; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace feed::bot {

struct response_head {
  int status = 0;
  std::size_t head_bytes = 0;  // including the blank line
  bool chunked = false;
  std::optional<std::uint64_t> content_length;
  bool close = false;
  std::optional<double> retry_after_s;
  bool event_stream = false;  // Content-Type is text/event-stream (parameters aside)
};

enum class head_parse { incomplete, ok, bad };

// Parses the head at the start of `buf` (which may hold more bytes after it).
head_parse parse_response_head(std::string_view buf, response_head& out);

// Longest head accepted before calling the response malformed.
inline constexpr std::size_t kMaxResponseHead = 64 * 1024;

}  // namespace feed::bot
