// Posts with an Idempotency-Key that this process has in flight or has
// accepted, by message id (which is derived from user_id and key), so that a
// second use of the key with other content is refused (422) before the first
// is stored and a store lookup could tell.
//
// An entry lives from the first post's acquire() until the message is seen
// stored (seen_stored(), fed by what the store hands the feed). With Kafka a
// post is answered 202 once the broker has it, which can be long before the
// worker stores it (its whole backlog after a database outage): the entry is
// then kept, and a reuse of the key with other content meanwhile is refused
// instead of being answered 202 and dropped by the worker. Kept "accepted"
// when the content is known to be the key's first (its store lookup said
// absent): other content is 422, the same 202. Kept "pending" when the
// message may be stored but the key may hold other content already (no
// lookup answered), or its write failed in a way that may still land: other
// content must wait (503), the same content goes ahead. A kept entry not seen
// stored within `remember_for` is forgotten, and the oldest one gives way
// when the map is full; lookups in the store cover both.
//
// Only a hash of the content is kept: an entry costs a few dozen bytes, and
// two different contents colliding on 64 bits is left to chance. Past
// `capacity` entries in flight posts go unguarded (the worker still notices
// a conflict, see worker.h).
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <list>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

#include "model/message.h"

namespace feed {

class inflight_keys {
 public:
  using clock = std::chrono::steady_clock;

  enum class outcome {
    registered,  // the caller holds an entry; release() it when the post is done
    conflict,    // the id is in flight with other content: wait for it to settle
    unguarded,   // the map is full; nothing to release
    accepted,    // the same content was accepted and is not stored yet: 202, nothing to release
    taken,       // other content was accepted and is not stored yet: 422
    pending,     // other content may still be stored: 503, nothing to release
  };

  // How a holder's post ended.
  struct settlement {
    bool durable = false;   // stored, or acknowledged by the queue
    bool checked = false;   // the store said it had no message under the id while the post held the entry
    bool may_land = false;  // refused with an error that does not rule out a late write
  };

  explicit inflight_keys(std::size_t capacity, clock::duration remember_for = std::chrono::minutes(10))
      : capacity_(capacity), remember_for_(remember_for) {}

  outcome acquire(const std::string& id, std::string_view content, clock::time_point now = clock::now());

  // Identical posts share the id and the entry, so one still waiting may be
  // answered as stored once another is durable. The last holder's release
  // keeps the entry, unless it was seen stored: accepted when one of the
  // holders was durable and one checked (the content is the key's first),
  // pending when one was durable or may land, else it drops it.
  void release(const std::string& id, settlement how, clock::time_point now = clock::now());
  void release(const std::string& id);  // settled with nothing to tell

  // One more hold on an entry that exists (false when none does), for a
  // caller that must still read it after its own post is settled.
  bool hold(const std::string& id);

  // Whether a post holding this entry was stored while it was held.
  bool stored(const std::string& id) const;

  // Whether the id has an entry, held or kept.
  bool contains(const std::string& id) const;

  // Messages the store has: their entries end (or end with their last
  // holder). Cheap when nothing is in flight or kept.
  void seen_stored(std::span<const message> stored);
  void seen_stored(const std::string& id);

  std::size_t size() const {
    std::lock_guard lock(mu_);
    return entries_.size();
  }

 private:
  struct entry {
    std::size_t content_hash;
    std::size_t holders;  // identical posts in flight at once; 0 once accepted
    bool stored = false;    // one of them was stored or is durable in the queue
    bool checked = false;   // the store had no message under the id while held
    bool may_land = false;  // one of them failed in a way that may still land
    bool seen = false;    // seen stored while held
    bool listed = false;    // kept (accepted or pending): in kept_ at in_order
    std::list<const std::string*>::iterator in_order{};  // while kept
    clock::time_point kept_at{};                         // while kept
    bool accepted() const { return stored && checked; }
  };
  using entries = std::unordered_map<std::string, entry>;

  // Forgets kept entries older than remember_for_.
  void expire(clock::time_point now);  // requires mu_
  // Forgets the oldest kept entry; false when there is none.
  bool evict_oldest();  // requires mu_
  void seen(entries::iterator it);   // requires mu_
  void unlist(entry& e);             // requires mu_
  void erase(entries::iterator it);  // requires mu_

  const std::size_t capacity_;
  const clock::duration remember_for_;
  mutable std::mutex mu_;
  entries entries_;                        // GUARDED_BY(mu_)
  std::list<const std::string*> kept_;     // GUARDED_BY(mu_) keys of kept entries, oldest first
  std::atomic<std::size_t> count_{0};      // entries_.size(), read without the lock
};

}  // namespace feed
