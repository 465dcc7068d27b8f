#include "bot/outage_tracker.h"

#include <algorithm>

namespace feed::bot {

void outage_tracker::failure(time_point at) noexcept {
  if (last_success_ && at < *last_success_) return;
  if (!last_failure_ || at > *last_failure_) last_failure_ = at;
  if (!open_since_ || at < *open_since_) open_since_ = at;
}

void outage_tracker::success(time_point at) noexcept {
  if (open_since_) close(at);
  if (!last_success_ || at > *last_success_) last_success_ = at;
}

void outage_tracker::finish(time_point at) noexcept {
  if (open_since_) close(at);
}

void outage_tracker::close(time_point at) noexcept {
  last_ = std::max(duration{0}, at - *open_since_);
  longest_ = std::max(longest_, last_);
  open_since_.reset();
  ++outages_;
}

}  // namespace feed::bot
