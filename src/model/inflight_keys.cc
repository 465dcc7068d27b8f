#include "model/inflight_keys.h"

#include <functional>

namespace feed {

inflight_keys::outcome inflight_keys::acquire(const std::string& id, std::string_view content,
                                              clock::time_point now) {
  const auto h = std::hash<std::string_view>{}(content);
  std::lock_guard lock(mu_);
  expire(now);
  if (auto it = entries_.find(id); it != entries_.end()) {
    auto& e = it->second;
    const bool kept = e.holders == 0;
    if (e.content_hash != h) {
      if (!kept) return outcome::conflict;
      return e.accepted() ? outcome::taken : outcome::pending;
    }
    if (kept && e.accepted()) return outcome::accepted;
    unlist(e);
    ++e.holders;
    return outcome::registered;
  }
  if (entries_.size() >= capacity_ && !evict_oldest()) return outcome::unguarded;
  entries_.emplace(id, entry{.content_hash = h, .holders = 1});
  count_.store(entries_.size(), std::memory_order_relaxed);
  return outcome::registered;
}

void inflight_keys::release(const std::string& id, settlement how, clock::time_point now) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(id);
  if (it == entries_.end() || it->second.holders == 0) return;
  auto& e = it->second;
  e.stored = e.stored || how.durable;
  e.checked = e.checked || how.checked;
  e.may_land = e.may_land || how.may_land;
  if (--e.holders > 0) return;
  if (e.seen || !(e.stored || e.may_land)) {
    erase(it);
    return;
  }
  e.kept_at = now;
  e.in_order = kept_.insert(kept_.end(), &it->first);
  e.listed = true;
}

void inflight_keys::release(const std::string& id) { release(id, settlement{}); }

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

bool inflight_keys::contains(const std::string& id) const {
  std::lock_guard lock(mu_);
  return entries_.contains(id);
}

void inflight_keys::seen_stored(std::span<const message> stored) {
  if (count_.load(std::memory_order_relaxed) == 0) return;
  std::lock_guard lock(mu_);
  for (const auto& m : stored)
    if (auto it = entries_.find(m.id); it != entries_.end()) seen(it);
}

void inflight_keys::seen_stored(const std::string& id) {
  std::lock_guard lock(mu_);
  if (auto it = entries_.find(id); it != entries_.end()) seen(it);
}

void inflight_keys::seen(entries::iterator it) {
  if (it->second.holders == 0) erase(it);
  else it->second.seen = true;
}

void inflight_keys::expire(clock::time_point now) {
  while (!kept_.empty()) {
    auto it = entries_.find(*kept_.front());
    if (now - it->second.kept_at < remember_for_) return;
    erase(it);
  }
}

bool inflight_keys::evict_oldest() {
  if (kept_.empty()) return false;
  erase(entries_.find(*kept_.front()));
  return true;
}

void inflight_keys::unlist(entry& e) {
  if (!e.listed) return;
  kept_.erase(e.in_order);
  e.listed = false;
}

void inflight_keys::erase(entries::iterator it) {
  unlist(it->second);
  entries_.erase(it);
  count_.store(entries_.size(), std::memory_order_relaxed);
}

}  // namespace feed
