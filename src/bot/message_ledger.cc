#include "bot/message_ledger.h"

namespace feed::bot {

message_ledger::message_ledger() : blocks_(new std::atomic<block*>[kMaxBlocks]) {
  for (std::uint64_t b = 0; b < kMaxBlocks; ++b) blocks_[b].store(nullptr, std::memory_order_relaxed);
}

message_ledger::~message_ledger() {
  for (std::uint64_t b = 0; b < kMaxBlocks; ++b) delete blocks_[b].load(std::memory_order_relaxed);
}

message_ledger::block* message_ledger::find(std::uint64_t i) const noexcept {
  if (i >= kCapacity) return nullptr;
  return blocks_[i >> kBlockBits].load(std::memory_order_acquire);
}

message_ledger::block* message_ledger::find_or_create(std::uint64_t i) noexcept {
  if (i >= kCapacity) return nullptr;
  auto& slot = blocks_[i >> kBlockBits];
  block* b = slot.load(std::memory_order_acquire);
  if (b != nullptr) return b;
  auto fresh = std::make_unique<block>();
  for (auto& s : fresh->state) s.store(0, std::memory_order_relaxed);
  for (auto& t : fresh->sent_ns) t.store(0, std::memory_order_relaxed);
  for (auto& h : fresh->id_hash) h.store(0, std::memory_order_relaxed);
  for (auto& d : fresh->stored_twice) d.store(0, std::memory_order_relaxed);
  if (slot.compare_exchange_strong(b, fresh.get(), std::memory_order_acq_rel)) return fresh.release();
  return b;  // another thread won; `fresh` is freed
}

void message_ledger::mark_sent(std::uint64_t i, std::int64_t sent_ns) noexcept {
  block* b = find_or_create(i);
  if (b == nullptr) return;
  const auto k = i & (kBlockSize - 1);
  b->sent_ns[k].store(sent_ns, std::memory_order_relaxed);
  // Release: a reader that sees the state also sees the send time.
  std::uint8_t expected = static_cast<std::uint8_t>(state::unsent);
  b->state[k].compare_exchange_strong(expected, static_cast<std::uint8_t>(state::sent), std::memory_order_release);
  auto hw = high_water_.load(std::memory_order_relaxed);
  while (hw < i + 1 && !high_water_.compare_exchange_weak(hw, i + 1, std::memory_order_release)) {
  }
}

void message_ledger::mark_accepted(std::uint64_t i) noexcept {
  block* b = find(i);
  if (b == nullptr) return;
  const auto prev = b->state[i & (kBlockSize - 1)].exchange(static_cast<std::uint8_t>(state::accepted), std::memory_order_release);
  if (prev != static_cast<std::uint8_t>(state::accepted)) accepted_.fetch_add(1, std::memory_order_relaxed);
}

void message_ledger::mark_failed(std::uint64_t i) noexcept {
  block* b = find(i);
  if (b == nullptr) return;
  std::uint8_t expected = static_cast<std::uint8_t>(state::sent);
  b->state[i & (kBlockSize - 1)].compare_exchange_strong(expected, static_cast<std::uint8_t>(state::failed),
                                                        std::memory_order_release);
}

void message_ledger::mark_unknown(std::uint64_t i) noexcept {
  block* b = find(i);
  if (b == nullptr) return;
  std::uint8_t expected = static_cast<std::uint8_t>(state::sent);
  if (b->state[i & (kBlockSize - 1)].compare_exchange_strong(expected, static_cast<std::uint8_t>(state::unknown),
                                                             std::memory_order_release)) {
    unknown_.fetch_add(1, std::memory_order_relaxed);
  }
}

message_ledger::id_seen message_ledger::note_id(std::uint64_t i, std::uint64_t id_hash) noexcept {
  block* b = find(i);
  if (b == nullptr || id_hash == 0) return id_seen::first;
  const auto k = i & (kBlockSize - 1);
  // Every subscriber reports every message: a plain load answers the common
  // case without taking the cache line exclusively.
  std::uint64_t expected = b->id_hash[k].load(std::memory_order_acquire);
  if (expected == 0 && b->id_hash[k].compare_exchange_strong(expected, id_hash, std::memory_order_acq_rel)) {
    return id_seen::first;
  }
  if (expected == id_hash) return id_seen::same;
  if (b->stored_twice[k].exchange(1, std::memory_order_relaxed) == 0) content_dups_.fetch_add(1, std::memory_order_relaxed);
  return id_seen::other;
}

message_ledger::state message_ledger::get(std::uint64_t i) const noexcept {
  const block* b = find(i);
  if (b == nullptr) return state::unsent;
  return static_cast<state>(b->state[i & (kBlockSize - 1)].load(std::memory_order_acquire));
}

std::optional<std::int64_t> message_ledger::sent_ns(std::uint64_t i) const noexcept {
  const block* b = find(i);
  if (b == nullptr) return std::nullopt;
  const auto k = i & (kBlockSize - 1);
  if (b->state[k].load(std::memory_order_acquire) == static_cast<std::uint8_t>(state::unsent)) return std::nullopt;
  return b->sent_ns[k].load(std::memory_order_relaxed);
}

std::vector<std::uint64_t> message_ledger::bits(state s) const {
  const auto n = high_water();
  std::vector<std::uint64_t> out((n + 63) / 64, 0);
  for (std::uint64_t i = 0; i < n; ++i) {
    if (get(i) == s) out[i / 64] |= std::uint64_t{1} << (i % 64);
  }
  return out;
}

}  // namespace feed::bot
