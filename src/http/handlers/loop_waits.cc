#include "http/handlers/loop_waits.h"

#include <algorithm>

namespace feed::http {

void loop_waits::add(std::shared_ptr<loop_wait> w, clock::time_point deadline) {
  if (cut_off_) deadline = std::min(deadline, *cut_off_);
  w->deadline_ = deadline;
  w->waits_ = this;
  // From the back: a new wait's deadline is nearly always the latest.
  loop_wait* after = tail_;
  while (after && after->deadline_ > deadline) after = after->prev_;
  loop_wait* raw = w.get();
  if (after) {
    raw->next_ = std::move(after->next_);
    raw->prev_ = after;
    after->next_ = std::move(w);
  } else {
    raw->next_ = std::move(head_);
    head_ = std::move(w);
  }
  if (raw->next_) raw->next_->prev_ = raw;
  else tail_ = raw;
  ++size_;
  arm();
}

bool loop_waits::remove(loop_wait& w) {
  if (w.waits_ != this) return false;
  w.waits_ = nullptr;
  std::shared_ptr<loop_wait> next = std::move(w.next_);
  if (next) next->prev_ = w.prev_;
  else tail_ = w.prev_;
  // Keeps `w` alive until it is off the list: the link to it may be its
  // last owner.
  std::shared_ptr<loop_wait> self = w.prev_ ? std::exchange(w.prev_->next_, std::move(next))
                                            : std::exchange(head_, std::move(next));
  w.prev_ = nullptr;
  // With nothing left to end, a pending timer would keep the loop from
  // running out of work, and so from stopping.
  if (--size_ == 0 && armed_) {
    timer_.cancel();
    armed_ = false;
  }
  return true;
}

// The timer is set for the earliest deadline, or left set for an earlier
// time (a wait that ended before its deadline): it then fires early, ends
// nothing, and is set again. It is cancelled only when no wait is left, so
// under load hardly any wait pays for a cancel.
void loop_waits::arm() {
  if (!head_) return;
  const auto first = head_->deadline_;
  if (armed_ && armed_for_ <= first) return;
  armed_ = true;
  armed_for_ = first;
  timer_.expires_at(first);
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;  // shut down, or set again (expires_at cancels)
    armed_ = false;
    expire();
  });
}

void loop_waits::expire() {
  const auto now = clock::now();
  while (head_ && head_->deadline_ <= now) {
    auto w = head_;
    remove(*w);
    w->finish(false);
  }
  arm();
}

void loop_waits::end_all() {
  cut_off_ = clock::now();
  while (head_) {
    auto w = head_;
    remove(*w);
    w->finish(false);
  }
}

void loop_waits::shutdown() {
  // One at a time from the head: destroying the list whole would recurse
  // once per wait through the forward links.
  while (head_) {
    auto w = head_;
    remove(*w);
    w->abandon();
  }
  armed_ = false;
}

void loop_inbox::push(std::shared_ptr<loop_wait> w) {
  {
    std::lock_guard lock(mu_);
    pending_.push_back(std::move(w));
    if (scheduled_) return;
    scheduled_ = true;
  }
  asio::post(ex_, [self = shared_from_this()] { self->drain(); });
}

void loop_inbox::drain() {
  {
    std::lock_guard lock(mu_);
    running_.swap(pending_);
    scheduled_ = false;
  }
  // A settled wait may resume its coroutine here; that coroutine may start
  // another wait, whose settlement goes to pending_, not to this batch.
  for (auto& w : running_) w->settle();
  running_.clear();  // keeps its capacity for the next burst
}

}  // namespace feed::http
