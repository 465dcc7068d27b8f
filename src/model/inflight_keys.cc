#include "model/inflight_keys.h"

#include <functional>

namespace feed {

inflight_keys::outcome inflight_keys::acquire(const std::string& id, std::string_view content,
                                              clock::time_point now) {
  const auto h = std::hash<std::string_view>{}(content);
  std::lock_guard lock(mu_);
  expire(now);
  if (auto it = entries_.find(id); it != entries_.end()) {
    const bool accepted = it->second.holders == 0;
    if (it->second.content_hash != h) return accepted ? outcome::taken : outcome::conflict;
    if (accepted) return outcome::accepted;
    ++it->second.holders;
    return outcome::registered;
  }
  if (entries_.size() >= capacity_ && !evict_oldest()) return outcome::unguarded;
  entries_.emplace(id, entry{.content_hash = h, .holders = 1});
  count_.store(entries_.size(), std::memory_order_relaxed);
  return outcome::registered;
}

void inflight_keys::release(const std::string& id, bool stored, bool checked, clock::time_point now) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(id);
  if (it == entries_.end() || it->second.holders == 0) return;
  auto& e = it->second;
  e.stored = e.stored || stored;
  e.checked = e.checked || checked;
  if (--e.holders > 0) return;
  if (!e.stored || !e.checked || e.seen) {
    erase(it);
    return;
  }
  e.accepted_at = now;
  e.in_order = accepted_.insert(accepted_.end(), &it->first);
  e.listed = true;
}

bool inflight_keys::hold(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return false;
  unlist(it->second);
  ++it->second.holders;
  return true;
}

bool inflight_keys::stored(const std::string& id) const {
  std::lock_guard lock(mu_);
  auto it = entries_.find(id);
  return it != entries_.end() && it->second.stored;
}

void inflight_keys::seen_stored(std::span<const message> stored) {
  if (count_.load(std::memory_order_relaxed) == 0) return;
  std::lock_guard lock(mu_);
  for (const auto& m : stored) {
    auto it = entries_.find(m.id);
    if (it == entries_.end()) continue;
    if (it->second.holders == 0) erase(it);
    else it->second.seen = true;
  }
}

void inflight_keys::expire(clock::time_point now) {
  while (!accepted_.empty()) {
    auto it = entries_.find(*accepted_.front());
    if (now - it->second.accepted_at < remember_for_) return;
    erase(it);
  }
}

bool inflight_keys::evict_oldest() {
  if (accepted_.empty()) return false;
  erase(entries_.find(*accepted_.front()));
  return true;
}

void inflight_keys::unlist(entry& e) {
  if (!e.listed) return;
  accepted_.erase(e.in_order);
  e.listed = false;
}

void inflight_keys::erase(entries::iterator it) {
  unlist(it->second);
  entries_.erase(it);
  count_.store(entries_.size(), std::memory_order_relaxed);
}

}  // namespace feed
