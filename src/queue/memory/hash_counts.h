// How many times each 64-bit key was added and not yet removed, in one
// table allocated up front: adding and removing allocate nothing, which
// matters on a path every post takes (the in-process queue counts the ids
// waiting in it, so that withdraw() knows how many copies to look for and
// where to stop looking).
//
// Open addressing with linear probing; a removal shifts the rest of its
// cluster back instead of leaving a tombstone, so lookups never slow down
// with use. The table holds twice as many slots as the most distinct keys
// it is promised (`max_keys`), keeping it at most half full.
//
// Not thread-safe: the queue calls it under its own mutex.
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>
#include <vector>

namespace feed {

class hash_counts {
 public:
  explicit hash_counts(std::size_t max_keys)
      : slots_(std::bit_ceil(std::max<std::size_t>(2 * max_keys, 8))),
        mask_(slots_.size() - 1),
        shift_(64 - std::countr_zero(slots_.size())) {}

  // At most max_keys distinct keys may be present at once.
  void add(std::uint64_t key) {
    slot& s = slots_[find(stored(key))];
    s.key = stored(key);
    ++s.count;
  }

  // Takes back one add(key); a key not present is left alone.
  void remove(std::uint64_t key) {
    std::size_t hole = find(stored(key));
    if (slots_[hole].key == 0 || --slots_[hole].count > 0) return;
    // Close the hole: a later entry of the cluster whose home is not
    // cyclically within (hole, next] would be unreachable past it.
    for (std::size_t next = (hole + 1) & mask_; slots_[next].key != 0; next = (next + 1) & mask_) {
      const std::size_t home = home_of(slots_[next].key);
      const bool stays = hole <= next ? (hole < home && home <= next) : (hole < home || home <= next);
      if (stays) continue;
      slots_[hole] = slots_[next];
      hole = next;
    }
    slots_[hole] = slot{};
  }

  std::uint32_t count(std::uint64_t key) const { return slots_[find(stored(key))].count; }

 private:
  struct slot {
    std::uint64_t key = 0;  // 0: empty
    std::uint32_t count = 0;
  };

  // 0 marks an empty slot, so the key 0 is kept as 1: the two share counts,
  // which only makes the queue look a little further for one of them.
  static std::uint64_t stored(std::uint64_t key) { return key ? key : 1; }

  // Fibonacci hashing: the product's top bits, so keys whose low bits
  // agree still spread (std::hash of a string is good, but nothing here
  // depends on it).
  std::size_t home_of(std::uint64_t key) const {
    return static_cast<std::size_t>((key * 0x9E3779B97F4A7C15ull) >> shift_);
  }

  // The key's slot, or the empty slot where it would go.
  std::size_t find(std::uint64_t key) const {
    std::size_t i = home_of(key);
    while (slots_[i].key != 0 && slots_[i].key != key) i = (i + 1) & mask_;
    return i;
  }

  std::vector<slot> slots_;
  std::size_t mask_;
  int shift_;
};

}  // namespace feed
