// A stop's deadline that one thread sets while others wait: a store write
// waiting for a lock, a send waiting for a broker, a commit waiting for its
// answer. Each reads it where it waits and gives up once it has passed.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>

namespace feed {

class stop_deadline {
 public:
  using clock = std::chrono::steady_clock;

  void set(clock::time_point t) { ticks_ = t.time_since_epoch().count(); }
  // time_point::max() until set.
  clock::time_point get() const { return clock::time_point(clock::duration(ticks_.load())); }
  bool passed() const { return clock::now() >= get(); }
  // `bound` cut short by the deadline (rounded up, so a wait never ends
  // before it), and 0 once it has passed.
  std::chrono::milliseconds cap(std::chrono::milliseconds bound) const {
    const auto now = clock::now(), at = get();
    if (at <= now) return std::chrono::milliseconds(0);
    return std::min(bound, std::chrono::ceil<std::chrono::milliseconds>(at - now));
  }

 private:
  std::atomic<clock::rep> ticks_{clock::time_point::max().time_since_epoch().count()};
};

}  // namespace feed
