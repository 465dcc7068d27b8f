#include "queue/memory/memory_queue.h"

#include <algorithm>
#include <functional>

namespace feed {

memory_queue::memory_queue(std::size_t capacity) : capacity_(capacity), waiting_(capacity) {}

void memory_queue::enqueue(message m, enqueue_done done) {
  const std::size_t hash = std::hash<std::string>{}(m.id);
  std::error_code refused;
  {
    std::lock_guard lock(mu_);
    if (closed_) {
      refused = errc::shutting_down;
    } else if (items_.size() >= capacity_) {
      refused = errc::queue_full;
    } else {
      items_.push_back({std::move(m), std::move(done), hash});
      waiting_.add(hash);
    }
  }
  if (refused) {
    done(refused);
    return;
  }
  cv_.notify_one();
}

result<void> memory_queue::ready() {
  std::lock_guard lock(mu_);
  if (closed_) return error(errc::shutting_down, "queue is closed");
  if (items_.size() >= capacity_) return error(errc::queue_full, "queue is full");
  return {};
}

bool memory_queue::withdraw(const std::string& id) {
  std::vector<enqueue_done> withdrawn;
  {
    std::lock_guard lock(mu_);
    const auto hash = std::hash<std::string>{}(id);
    for (const auto& [token, taken] : in_flight_)
      if (std::find(taken.id_hashes.begin(), taken.id_hashes.end(), hash) != taken.id_hashes.end()) return false;
    // Waits run out oldest first, so the copies are usually near the front,
    // where erasing from a deque is cheap; the count says when the last
    // one has been seen.
    std::uint32_t left = waiting_.count(hash);
    for (auto it = items_.begin(); left > 0 && it != items_.end();) {
      if (it->id_hash != hash) {
        ++it;
        continue;
      }
      --left;
      if (it->msg.id != id) {  // another id with the same hash
        ++it;
        continue;
      }
      withdrawn.push_back(std::move(it->done));
      it = items_.erase(it);
      waiting_.remove(hash);
    }
  }
  for (auto& done : withdrawn) done(errc::timeout);
  return !withdrawn.empty();
}

result<batch> memory_queue::poll(std::size_t max, std::chrono::milliseconds wait) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, wait, [&] { return !items_.empty() || closed_; });
  batch b;
  if (items_.empty()) {
    b.end_of_stream = closed_;
    return b;
  }
  const std::size_t n = std::min(max, items_.size());
  b.messages.reserve(n);
  auto& taken = in_flight_[b.token = next_token_++];
  taken.acks.reserve(n);
  taken.id_hashes.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    item& front = items_.front();
    taken.id_hashes.push_back(front.id_hash);
    waiting_.remove(front.id_hash);
    b.messages.push_back(std::move(front.msg));
    taken.acks.push_back(std::move(front.done));
    items_.pop_front();
  }
  return b;
}

result<void> memory_queue::commit(std::span<const batch> batches) {
  for (const auto& b : batches) commit_one(b);
  return {};
}

void memory_queue::commit_one(const batch& b) {
  std::vector<enqueue_done> acks;
  {
    std::lock_guard lock(mu_);
    auto it = in_flight_.find(b.token);
    if (it == in_flight_.end()) return;
    acks = std::move(it->second.acks);
  }
  for (std::size_t i : b.dropped)
    if (i < acks.size()) std::exchange(acks[i], nullptr)(errc::key_conflict);
  for (auto& done : acks)
    if (done) done({});
  // Only now, with every waiter told (a post with an Idempotency-Key
  // records its success for identical posts), may withdraw() take back a
  // waiting copy of these ids.
  std::lock_guard lock(mu_);
  in_flight_.erase(b.token);
}

void memory_queue::fail(const batch& b, std::error_code why) {
  std::vector<enqueue_done> acks;
  {
    std::lock_guard lock(mu_);
    auto it = in_flight_.find(b.token);
    if (it == in_flight_.end()) return;
    acks = std::move(it->second.acks);
    in_flight_.erase(it);
  }
  for (auto& done : acks) done(why);
}

void memory_queue::close() {
  {
    std::lock_guard lock(mu_);
    closed_ = true;
  }
  cv_.notify_all();
}

std::size_t memory_queue::size() const {
  std::lock_guard lock(mu_);
  return items_.size();
}

}  // namespace feed
