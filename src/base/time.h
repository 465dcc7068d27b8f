// Timestamps: microsecond UTC time points and their RFC 3339 text form.
//
// Output is always UTC with six fractional digits ("...T12:00:00.123456Z"),
// which sorts as text and is what Go's time.Time unmarshals. Input accepts
// any RFC 3339 offset and 0-9 fractional digits (extra precision truncated).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace feed {

using timestamp = std::chrono::sys_time<std::chrono::microseconds>;

timestamp now_utc() noexcept;
std::string format_rfc3339(timestamp t);
std::optional<timestamp> parse_rfc3339(std::string_view s);

}  // namespace feed
