#include "bot/delivery_tally.h"

#include <algorithm>
#include <bit>

namespace feed::bot {

delivery_tally::outcome delivery_tally::record(std::uint64_t i, std::optional<std::uint64_t> seq, bool known) {
  if (!known) {
    ++foreign_;
    return outcome::foreign;
  }
  const std::size_t word = i / 64;
  const std::uint64_t bit = std::uint64_t{1} << (i % 64);
  if (word >= bits_.size()) bits_.resize(std::max(word + 1, bits_.size() * 2), 0);
  if (bits_[word] & bit) {
    ++duplicates_;
    return outcome::duplicate;
  }
  bits_[word] |= bit;
  ++unique_;
  if (seq) {
    if (have_seq_ && *seq <= prev_seq_) ++out_of_order_;
    prev_seq_ = *seq;
    have_seq_ = true;
  }
  return outcome::first;
}

bool delivery_tally::has(std::uint64_t i) const noexcept {
  const std::size_t word = i / 64;
  return word < bits_.size() && (bits_[word] >> (i % 64) & 1) != 0;
}

delivery_verdict::delivery_verdict(std::vector<std::uint64_t> accepted, std::uint64_t accepted_count,
                                   std::vector<std::uint64_t> unknown)
    : accepted_(std::move(accepted)),
      accepted_count_(accepted_count),
      unknown_(std::move(unknown)),
      lost_(accepted_.size(), 0),
      unknown_seen_(unknown_.size(), 0),
      unknown_everywhere_(unknown_) {}

void delivery_verdict::add(const delivery_tally& t) {
  const auto& r = t.bits();
  std::uint64_t received = 0;
  std::uint64_t unexpected = t.foreign();
  const std::size_t n = std::max({accepted_.size(), unknown_.size(), r.size()});
  for (std::size_t w = 0; w < n; ++w) {
    const std::uint64_t a = word(accepted_, w);
    const std::uint64_t u = word(unknown_, w);
    const std::uint64_t got = word(r, w);
    received += static_cast<std::uint64_t>(std::popcount(a & got));
    unexpected += static_cast<std::uint64_t>(std::popcount(got & ~a & ~u));
    if (w < lost_.size()) lost_[w] |= a & ~got;
    if (w < unknown_seen_.size()) {
      unknown_seen_[w] |= u & got;
      unknown_everywhere_[w] &= got;
    }
  }
  const std::uint64_t missing = accepted_count_ - std::min(accepted_count_, received);
  ++sum_.subscribers;
  sum_.expected += accepted_count_;
  sum_.received += received;
  sum_.missing += missing;
  sum_.duplicated += t.duplicates();
  sum_.out_of_order += t.out_of_order();
  sum_.unexpected += unexpected;
  sum_.lost_max_per_subscriber = std::max(sum_.lost_max_per_subscriber, missing);
  if (missing > 0) ++sum_.subscribers_incomplete;
}

verify_totals delivery_verdict::totals() const {
  verify_totals v = sum_;
  for (const auto w : lost_) v.lost += static_cast<std::uint64_t>(std::popcount(w));
  for (std::size_t w = 0; w < unknown_seen_.size(); ++w) {
    v.unknown_delivered += static_cast<std::uint64_t>(std::popcount(unknown_seen_[w]));
    v.unknown_partial += static_cast<std::uint64_t>(std::popcount(unknown_seen_[w] & ~unknown_everywhere_[w]));
  }
  return v;
}

}  // namespace feed::bot
