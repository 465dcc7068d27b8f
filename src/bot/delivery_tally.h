// Per-subscriber delivery accounting, and the end-of-run sum over subscribers.
//
// A subscriber records each event of this run as (message number, SSE seq).
// Received-set is a bitset indexed by message number, so memory is one bit per
// message per subscriber and the final comparison against the accepted set is
// word-wise (popcount of accepted & ~received).
//
// Definitions (per subscriber, then summed):
//   missing      accepted (2xx) but never received
//   duplicated   received again after its first delivery
//   out_of_order a first delivery whose seq is below a seq already received
//   unexpected   received but never accepted (not an error: the server may
//                have stored a message whose answer the bot never got)
// Not thread-safe: one tally per subscriber, owned by its thread; tally_into()
// runs after the subscriber has stopped.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

namespace feed::bot {

struct verify_totals {
  std::uint64_t subscribers = 0;
  std::uint64_t expected = 0;  // accepted x subscribers
  std::uint64_t received = 0;  // first deliveries of accepted messages
  std::uint64_t missing = 0;
  std::uint64_t duplicated = 0;
  std::uint64_t out_of_order = 0;
  std::uint64_t unexpected = 0;
  std::uint64_t subscribers_incomplete = 0;  // subscribers with any missing
};

class delivery_tally {
 public:
  enum class outcome { first, duplicate, foreign };

  // `known`: whether message i was ever sent by this run; an event carrying
  // an unknown number (a stale or forged token) is unexpected and not stored.
  outcome record(std::uint64_t i, std::optional<std::uint64_t> seq, bool known);

  std::uint64_t unique() const noexcept { return unique_; }
  std::uint64_t duplicates() const noexcept { return duplicates_; }
  std::uint64_t out_of_order() const noexcept { return out_of_order_; }
  const std::vector<std::uint64_t>& bits() const noexcept { return bits_; }

  // Adds this subscriber's figures, judged against `accepted` (bit i = message
  // i accepted; `accepted_count` = its popcount), into `totals`.
  void tally_into(const std::vector<std::uint64_t>& accepted, std::uint64_t accepted_count,
                  verify_totals& totals) const;

 private:
  std::vector<std::uint64_t> bits_;
  std::uint64_t unique_ = 0;
  std::uint64_t duplicates_ = 0;
  std::uint64_t out_of_order_ = 0;
  std::uint64_t foreign_ = 0;
  std::uint64_t max_seq_ = 0;
  bool have_seq_ = false;
};

}  // namespace feed::bot
