// Open-loop send schedule: message i is due at start + i / rate, whatever
// happened to earlier messages. Latency is measured from the due time, so a
// slow server cannot hide its stalls by slowing the client down
// (coordinated omission).
//
// The run ends at whichever limit comes first: `count` messages or the last
// due time before `duration`. Both 0 means unlimited.
//
// Value type; immutable after construction, safe to share between threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <limits>

namespace feed::bot {

class schedule {
 public:
  static constexpr std::uint64_t kUnlimited = std::numeric_limits<std::uint64_t>::max();

  // rate > 0 messages per second; duration in seconds (0 = none); count 0 = none.
  schedule(double rate, std::uint64_t count, double duration_s);

  double rate() const noexcept { return rate_; }
  // Number of messages in the run, or kUnlimited.
  std::uint64_t total() const noexcept { return total_; }
  bool finite() const noexcept { return total_ != kUnlimited; }

  // Offset of message i from the start.
  std::chrono::nanoseconds due(std::uint64_t i) const noexcept;

  // How many messages are due at or before `elapsed` (capped at total()).
  std::uint64_t due_count(std::chrono::nanoseconds elapsed) const noexcept;

  // The first index >= `from` that belongs to `lane` of `lanes` (i % lanes == lane);
  // lets each thread own an interleaved share of one global schedule.
  static std::uint64_t next_in_lane(std::uint64_t from, unsigned lane, unsigned lanes) noexcept;

 private:
  double rate_;
  std::uint64_t total_;
};

}  // namespace feed::bot
