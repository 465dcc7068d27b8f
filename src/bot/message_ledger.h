// What happened to each message of this run, indexed by message number.
//
// Posting threads write (mark_sent / mark_accepted / mark_failed /
// mark_unknown for the messages they own); subscriber threads read sent_ns()
// to compute end-to-end latency and note_id() the feed's id for each
// message; the final tally reads the state bitsets after every thread has
// stopped. Storage is flat: fixed-size blocks of relaxed atomics, allocated
// on first touch (lock-free, compare-and-swap), so the table grows with an
// unbounded run without ever moving an entry. ~18 bytes per message.
//
// States: a message is `sent` from its first attempt on; it ends `accepted`
// (some attempt got 2xx), `failed` (no attempt can have been stored) or
// `unknown` (no 2xx, but some attempt may have been stored: the connection
// failed after the request went out, or a 503 said the outcome is unknown).
// An unknown message may legitimately appear in the feed, or not.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

namespace feed::bot {

class message_ledger {
 public:
  static constexpr unsigned kBlockBits = 16;
  static constexpr std::uint64_t kBlockSize = std::uint64_t{1} << kBlockBits;
  static constexpr std::uint64_t kMaxBlocks = std::uint64_t{1} << 16;  // 2^32 messages
  static constexpr std::uint64_t kCapacity = kBlockSize * kMaxBlocks;

  enum class state : std::uint8_t { unsent = 0, sent = 1, accepted = 2, failed = 3, unknown = 4 };
  // What note_id() found: the first id seen for the message, the same id
  // again, or another id (the store holds the content twice).
  enum class id_seen { first, same, other };

  message_ledger();
  ~message_ledger();
  message_ledger(const message_ledger&) = delete;
  message_ledger& operator=(const message_ledger&) = delete;

  // sent_ns: send time as an offset from the run's start (overwritten on retry).
  // Indexes >= kCapacity are ignored.
  void mark_sent(std::uint64_t i, std::int64_t sent_ns) noexcept;
  void mark_accepted(std::uint64_t i) noexcept;
  void mark_failed(std::uint64_t i) noexcept;
  void mark_unknown(std::uint64_t i) noexcept;

  // Records `id_hash` (a hash of the feed's message id, never 0) as the id of
  // message i if it is the first seen, and compares it otherwise. An `other`
  // marks message i as stored twice (content_duplicates()).
  id_seen note_id(std::uint64_t i, std::uint64_t id_hash) noexcept;

  state get(std::uint64_t i) const noexcept;
  // nullopt when message i was never sent.
  std::optional<std::int64_t> sent_ns(std::uint64_t i) const noexcept;

  // One past the highest index ever marked sent.
  std::uint64_t high_water() const noexcept { return high_water_.load(std::memory_order_acquire); }

  // Bit i set when message i is in state `s`, for i < high_water().
  std::vector<std::uint64_t> bits(state s) const;
  std::vector<std::uint64_t> accepted_bits() const { return bits(state::accepted); }
  std::uint64_t accepted_count() const noexcept { return accepted_.load(std::memory_order_relaxed); }
  std::uint64_t unknown_count() const noexcept { return unknown_.load(std::memory_order_relaxed); }
  // Messages seen in the feed under two different ids.
  std::uint64_t content_duplicates() const noexcept { return content_dups_.load(std::memory_order_relaxed); }

 private:
  struct block {
    std::array<std::atomic<std::int64_t>, kBlockSize> sent_ns;
    std::array<std::atomic<std::uint8_t>, kBlockSize> state;
    std::array<std::atomic<std::uint64_t>, kBlockSize> id_hash;  // 0 = none seen yet
    std::array<std::atomic<std::uint8_t>, kBlockSize> stored_twice;
  };
  block* find(std::uint64_t i) const noexcept;
  block* find_or_create(std::uint64_t i) noexcept;

  std::unique_ptr<std::atomic<block*>[]> blocks_;
  std::atomic<std::uint64_t> high_water_{0};
  std::atomic<std::uint64_t> accepted_{0};
  std::atomic<std::uint64_t> unknown_{0};
  std::atomic<std::uint64_t> content_dups_{0};
};

}  // namespace feed::bot
