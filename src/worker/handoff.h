// A bounded, closable FIFO between two pipeline stages on two threads.
//
// push() waits while `capacity` items are waiting, so a slow consumer holds
// its producer back instead of letting items pile up in memory. close() says
// no more items will come; pop_up_to() returns nothing once the hand-off is
// closed and empty. Order is kept, which is what lets the worker's stages
// keep seq order.
//
// pop_up_to() takes every waiting item within a budget, so a stage that fell
// behind catches up with one round trip for all of them instead of one per
// item (a standing queue of small batches would otherwise add a
// whole round trip per waiting batch to every message's latency).
//
// wait_until_wanted() is for a producer that should fetch work only when
// the consumer is ready for it: it returns once a consumer waits on an
// empty hand-off.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <utility>
#include <vector>

namespace feed {

template <class T>
class handoff {
 public:
  explicit handoff(std::size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {}

  void push(T item) {
    std::unique_lock lock(mu_);
    not_full_.wait(lock, [&] { return items_.size() < capacity_; });
    items_.push_back(std::move(item));
    lock.unlock();
    not_empty_.notify_one();
  }

  // Waits for at least one item; returns the waiting items in order as long
  // as the sum of weight(item) stays within budget, and always the first
  // one. Empty only when closed and drained.
  template <class Weight>
  std::vector<T> pop_up_to(std::size_t budget, Weight&& weight) {
    std::unique_lock lock(mu_);
    if (items_.empty() && !closed_) {
      ++consumers_waiting_;
      wanted_.notify_all();
      not_empty_.wait(lock, [&] { return !items_.empty() || closed_; });
      --consumers_waiting_;
    }
    std::vector<T> out;
    std::size_t total = 0;
    while (!items_.empty()) {
      total += weight(items_.front());
      if (total > budget && !out.empty()) break;
      out.push_back(std::move(items_.front()));
      items_.pop_front();
    }
    lock.unlock();
    if (!out.empty()) not_full_.notify_all();
    return out;
  }

  // Whether a consumer waited on an empty hand-off (or it was closed)
  // within `timeout`.
  template <class Rep, class Period>
  bool wait_until_wanted(std::chrono::duration<Rep, Period> timeout) {
    std::unique_lock lock(mu_);
    return wanted_.wait_for(lock, timeout, [&] { return (consumers_waiting_ > 0 && items_.empty()) || closed_; });
  }

  void close() {
    {
      std::lock_guard lock(mu_);
      closed_ = true;
    }
    not_empty_.notify_all();
  }

 private:
  const std::size_t capacity_;
  std::mutex mu_;
  std::condition_variable not_full_;
  std::condition_variable not_empty_;
  std::condition_variable wanted_;
  std::deque<T> items_;               // GUARDED_BY(mu_)
  std::size_t consumers_waiting_ = 0;  // GUARDED_BY(mu_)
  bool closed_ = false;               // GUARDED_BY(mu_)
};

}  // namespace feed
