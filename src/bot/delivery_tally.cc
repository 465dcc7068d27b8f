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
    if (have_seq_ && *seq < max_seq_) ++out_of_order_;
    if (!have_seq_ || *seq > max_seq_) max_seq_ = *seq;
    have_seq_ = true;
  }
  return outcome::first;
}

void delivery_tally::tally_into(const std::vector<std::uint64_t>& accepted, std::uint64_t accepted_count,
                                verify_totals& totals) const {
  std::uint64_t received = 0;
  std::uint64_t unexpected = foreign_;
  const std::size_t n = std::max(accepted.size(), bits_.size());
  for (std::size_t w = 0; w < n; ++w) {
    const std::uint64_t a = w < accepted.size() ? accepted[w] : 0;
    const std::uint64_t r = w < bits_.size() ? bits_[w] : 0;
    received += static_cast<std::uint64_t>(std::popcount(a & r));
    unexpected += static_cast<std::uint64_t>(std::popcount(r & ~a));
  }
  const std::uint64_t missing = accepted_count - std::min(accepted_count, received);
  ++totals.subscribers;
  totals.expected += accepted_count;
  totals.received += received;
  totals.missing += missing;
  totals.duplicated += duplicates_;
  totals.out_of_order += out_of_order_;
  totals.unexpected += unexpected;
  if (missing > 0) ++totals.subscribers_incomplete;
}

}  // namespace feed::bot
