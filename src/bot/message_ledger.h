// What happened to each message of this run, indexed by message number.
//
// Posting threads write (mark_sent / mark_accepted / mark_failed for the
// messages they own); subscriber threads read sent_ns() to compute
// end-to-end latency; the final tally reads accepted_bits() after every
// thread has stopped. Storage is flat: fixed-size blocks of relaxed atomics,
// allocated on first touch (lock-free, compare-and-swap), so the table grows
// with an unbounded run without ever moving an entry. ~9 bytes per message.
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

  enum class state : std::uint8_t { unsent = 0, sent = 1, accepted = 2, failed = 3 };

  message_ledger();
  ~message_ledger();
  message_ledger(const message_ledger&) = delete;
  message_ledger& operator=(const message_ledger&) = delete;

  // sent_ns: send time as an offset from the run's start (overwritten on retry).
  // Indexes >= kCapacity are ignored.
  void mark_sent(std::uint64_t i, std::int64_t sent_ns) noexcept;
  void mark_accepted(std::uint64_t i) noexcept;
  void mark_failed(std::uint64_t i) noexcept;

  state get(std::uint64_t i) const noexcept;
  // nullopt when message i was never sent.
  std::optional<std::int64_t> sent_ns(std::uint64_t i) const noexcept;

  // One past the highest index ever marked sent.
  std::uint64_t high_water() const noexcept { return high_water_.load(std::memory_order_acquire); }

  // Bit i set when message i was accepted (2xx), for i < high_water().
  std::vector<std::uint64_t> accepted_bits() const;
  std::uint64_t accepted_count() const noexcept { return accepted_.load(std::memory_order_relaxed); }

 private:
  struct block {
    std::array<std::atomic<std::int64_t>, kBlockSize> sent_ns;
    std::array<std::atomic<std::uint8_t>, kBlockSize> state;
  };
  block* find(std::uint64_t i) const noexcept;
  block* find_or_create(std::uint64_t i) noexcept;

  std::unique_ptr<std::atomic<block*>[]> blocks_;
  std::atomic<std::uint64_t> high_water_{0};
  std::atomic<std::uint64_t> accepted_{0};
};

}  // namespace feed::bot
