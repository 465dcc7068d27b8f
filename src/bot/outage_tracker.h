// The longest stretch during which something kept failing: a posting target
// that gave no 202, or a subscriber that had no stream.
//
// An outage opens at the first failure that happened after the last success
// and closes at the next success; its length is the time between the two.
// Failures dated before the last success are ignored: that success already
// proved the target was up after them (threads report slightly out of
// order). An outage still open at the end is closed by finish(), at a time
// the caller chooses (the last failure seen, or the end of the run).
//
// Times are steady_clock points. Not thread-safe (see availability.h for
// the locked, shared version).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

namespace feed::bot {

class outage_tracker {
 public:
  using time_point = std::chrono::steady_clock::time_point;
  using duration = std::chrono::steady_clock::duration;

  void failure(time_point at) noexcept;
  void success(time_point at) noexcept;
  // Closes an open outage at `at` (not before its start).
  void finish(time_point at) noexcept;

  bool open() const noexcept { return open_since_.has_value(); }
  std::optional<time_point> open_since() const noexcept { return open_since_; }
  std::optional<time_point> last_failure() const noexcept { return last_failure_; }
  duration longest() const noexcept { return longest_; }
  // The length of the outage closed last (zero before any).
  duration last() const noexcept { return last_; }
  double longest_s() const noexcept { return std::chrono::duration<double>(longest_).count(); }
  // Outages closed so far (by a success or by finish()).
  std::uint64_t outages() const noexcept { return outages_; }

 private:
  void close(time_point at) noexcept;

  std::optional<time_point> last_success_;
  std::optional<time_point> last_failure_;
  std::optional<time_point> open_since_;
  duration longest_{0};
  duration last_{0};
  std::uint64_t outages_ = 0;
};

}  // namespace feed::bot
