// Posts with an Idempotency-Key that this process is still enqueueing, by
// message id (which is derived from user_id and key), so that a second use
// of the key with other content is refused (422) while the first is in
// flight, before either is stored and a store lookup could tell.
//
// Only a hash of the content is kept: an entry costs a few dozen bytes, and
// two different contents colliding on 64 bits is left to chance. The map is
// bounded; past `capacity` posts go unguarded (the worker still notices a
// conflict, see worker.h).
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <cstddef>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace feed {

class inflight_keys {
 public:
  enum class outcome {
    registered,   // the caller holds an entry; release() it when the post is done
    conflict,     // the id is in flight with other content
    unguarded,    // the map is full; nothing to release
  };

  explicit inflight_keys(std::size_t capacity) : capacity_(capacity) {}

  outcome acquire(const std::string& id, std::string_view content) {
    const auto h = std::hash<std::string_view>{}(content);
    std::lock_guard lock(mu_);
    if (auto it = entries_.find(id); it != entries_.end()) {
      if (it->second.content_hash != h) return outcome::conflict;
      ++it->second.holders;
      return outcome::registered;
    }
    if (entries_.size() >= capacity_) return outcome::unguarded;
    entries_.emplace(id, entry{h, 1});
    return outcome::registered;
  }

  // `stored`: the caller's post was stored (or is durable in the queue).
  // Identical posts share the id, so one still waiting may then be answered
  // as stored too.
  void release(const std::string& id, bool stored = false) {
    std::lock_guard lock(mu_);
    auto it = entries_.find(id);
    if (it == entries_.end()) return;
    it->second.stored = it->second.stored || stored;
    if (--it->second.holders == 0) entries_.erase(it);
  }

  // One more hold on an entry that exists (false when none does), for a
  // caller that must still read it after its own post is settled.
  bool hold(const std::string& id) {
    std::lock_guard lock(mu_);
    auto it = entries_.find(id);
    if (it == entries_.end()) return false;
    ++it->second.holders;
    return true;
  }

  // Whether a post holding this entry was stored while it was held.
  bool stored(const std::string& id) const {
    std::lock_guard lock(mu_);
    auto it = entries_.find(id);
    return it != entries_.end() && it->second.stored;
  }

  std::size_t size() const {
    std::lock_guard lock(mu_);
    return entries_.size();
  }

 private:
  struct entry {
    std::size_t content_hash;
    std::size_t holders;  // identical posts in flight at once
    bool stored = false;  // one of them was stored
  };
  const std::size_t capacity_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, entry> entries_;  // GUARDED_BY(mu_)
};

}  // namespace feed
