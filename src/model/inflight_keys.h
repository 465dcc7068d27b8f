// Posts with an Idempotency-Key that this process has in flight or has
// accepted, by message id (which is derived from user_id and key), so that a
// second use of the key with other content is refused (422) before the first
// is stored and a store lookup could tell.
//
// An entry lives from the first post's acquire() until the message is seen
// stored (seen_stored(), fed by what the store hands the feed). With Kafka a
// post is answered 202 once the broker has it, which can be long before the
// worker stores it (its whole backlog after a database outage): the entry is
// then kept "accepted", and a reuse of the key with other content meanwhile
// is refused instead of being answered 202 and dropped by the worker. An
// accepted entry not seen stored within `remember_for` is forgotten, and the
// oldest one gives way when the map is full; lookups in the store cover both.
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
  };

  explicit inflight_keys(std::size_t capacity, clock::duration remember_for = std::chrono::minutes(10))
      : capacity_(capacity), remember_for_(remember_for) {}

  outcome acquire(const std::string& id, std::string_view content, clock::time_point now = clock::now());

  // `stored`: the caller's post was stored or is durable in the queue.
  // Identical posts share the id, so one still waiting may then be answered
  // as stored too. `checked`: the store said it had no message under the id
  // while the caller held the entry, so the content here is the key's first.
  // The last holder's release keeps the entry as accepted when one of them
  // was stored and one was checked (and it is not seen stored yet), else
  // drops it: an unchecked key may hold other content in the store already.
  void release(const std::string& id, bool stored = false, bool checked = false,
               clock::time_point now = clock::now());

  // One more hold on an entry that exists (false when none does), for a
  // caller that must still read it after its own post is settled.
  bool hold(const std::string& id);

  // Whether a post holding this entry was stored while it was held.
  bool stored(const std::string& id) const;

  // Messages the store has: their entries end (or end with their last
  // holder). Cheap when nothing is in flight or accepted.
  void seen_stored(std::span<const message> stored);

  std::size_t size() const {
    std::lock_guard lock(mu_);
    return entries_.size();
  }

 private:
  struct entry {
    std::size_t content_hash;
    std::size_t holders;  // identical posts in flight at once; 0 once accepted
    bool stored = false;  // one of them was stored or is durable in the queue
    bool checked = false; // the store had no message under the id while held
    bool seen = false;    // seen stored while held
    bool listed = false;  // accepted: in accepted_ at in_order
    std::list<const std::string*>::iterator in_order{};  // while accepted
    clock::time_point accepted_at{};                     // while accepted
  };
  using entries = std::unordered_map<std::string, entry>;

  // Forgets accepted entries older than remember_for_.
  void expire(clock::time_point now);  // requires mu_
  // Forgets the oldest accepted entry; false when there is none.
  bool evict_oldest();  // requires mu_
  void unlist(entry& e);             // requires mu_
  void erase(entries::iterator it);  // requires mu_

  const std::size_t capacity_;
  const clock::duration remember_for_;
  mutable std::mutex mu_;
  entries entries_;                        // GUARDED_BY(mu_)
  std::list<const std::string*> accepted_;  // GUARDED_BY(mu_) keys of accepted entries, oldest first
  std::atomic<std::size_t> count_{0};      // entries_.size(), read without the lock
};

}  // namespace feed
