// Error values shared by every module.
//
// Expected failures (bad input, a full queue, a database that is down) travel
// as values: result<T> holds either a T or an `error`, which is an errc code
// plus a human-readable message. Exceptions are kept for programming errors
// and are turned into HTTP 500 at the request boundary.
#pragma once

#include <string>
#include <system_error>

namespace feed {

enum class errc {
  ok = 0,
  invalid_input,   // the caller sent something we refuse; message says what
  queue_full,      // bounded queue at capacity; retry later
  unavailable,     // a backing service (database, broker) cannot be reached
  timeout,         // a bounded wait ran out
  shutting_down,   // the component is stopping and takes no new work
  storage,         // the store failed in a way a retry will not fix by itself
  corrupt,         // data read back does not have the expected shape
  key_conflict,    // an Idempotency-Key's message is stored with other content
  not_sent,        // the queue gave up on a message it never handed to its broker
};

const std::error_category& feed_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), feed_category()};
}

struct error {
  std::error_code code;
  std::string message;

  error(errc e, std::string msg) : code(make_error_code(e)), message(std::move(msg)) {}
  error(std::error_code c, std::string msg) : code(c), message(std::move(msg)) {}

  bool is(errc e) const noexcept { return code == make_error_code(e); }
};

}  // namespace feed

template <>
struct std::is_error_code_enum<feed::errc> : std::true_type {};
