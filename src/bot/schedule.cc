#include "bot/schedule.h"

#include <algorithm>
#include <cmath>

namespace feed::bot {

schedule::schedule(double rate, std::uint64_t count, double duration_s) : rate_(rate), total_(kUnlimited) {
  if (count > 0) total_ = count;
  if (duration_s > 0) {
    // Messages with i / rate < duration.
    const double n = std::ceil(duration_s * rate_ - 1e-9);
    const auto by_time = static_cast<std::uint64_t>(std::max(0.0, n));
    total_ = std::min(total_, by_time);
  }
}

std::chrono::nanoseconds schedule::due(std::uint64_t i) const noexcept {
  return std::chrono::nanoseconds(static_cast<std::int64_t>(std::llround(static_cast<double>(i) * 1e9 / rate_)));
}

std::uint64_t schedule::due_count(std::chrono::nanoseconds elapsed) const noexcept {
  if (elapsed.count() < 0) return 0;
  auto n = static_cast<std::uint64_t>(std::floor(static_cast<double>(elapsed.count()) * rate_ / 1e9)) + 1;
  // Rounding in due() may put the boundary message one either side.
  while (n > 0 && due(n - 1) > elapsed) --n;
  while (due(n) <= elapsed && n < total_) ++n;
  return std::min(n, total_);
}

std::uint64_t schedule::next_in_lane(std::uint64_t from, unsigned lane, unsigned lanes) noexcept {
  const std::uint64_t r = from % lanes;
  return from - r + lane + (r > lane ? lanes : 0);
}

}  // namespace feed::bot
