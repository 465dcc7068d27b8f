// Per-subscriber delivery accounting, and the end-of-run sum over subscribers.
//
// A subscriber records each event of this run as (message number, SSE seq).
// Received-set is a bitset indexed by message number, so memory is one bit per
// message per subscriber and the final comparison against the accepted set is
// word-wise (popcount of accepted & ~received).
//
// Definitions (per subscriber, then summed):
//   missing      accepted (2xx) but never received
//   duplicated   received again (same id) after its first delivery
//   out_of_order a first delivery whose seq is not greater than that of the
//                previous first delivery (seq is global, so this holds
//                across reconnects and instances)
//   unexpected   received but neither accepted nor of unknown outcome (not
//                counted as an error: the server may have stored a message
//                it answered otherwise)
// and over all subscribers together:
//   lost               accepted messages that one subscriber or more never received
//   unknown_delivered  messages of unknown outcome that some subscriber received
//   unknown_partial    ... that some subscribers received and others did not
// Not thread-safe: one tally per subscriber, owned by its thread; the
// verdict is built after every subscriber has stopped.
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
  std::uint64_t lost = 0;
  std::uint64_t lost_max_per_subscriber = 0;  // the most missing at one subscriber
  std::uint64_t unknown_delivered = 0;
  std::uint64_t unknown_partial = 0;
};

class delivery_tally {
 public:
  enum class outcome { first, duplicate, foreign };

  // `known`: whether message i was ever sent by this run; an event carrying
  // an unknown number (a stale or forged token) is unexpected and not stored.
  outcome record(std::uint64_t i, std::optional<std::uint64_t> seq, bool known);

  // Whether message i has been received.
  bool has(std::uint64_t i) const noexcept;

  std::uint64_t unique() const noexcept { return unique_; }
  std::uint64_t duplicates() const noexcept { return duplicates_; }
  std::uint64_t out_of_order() const noexcept { return out_of_order_; }
  std::uint64_t foreign() const noexcept { return foreign_; }
  const std::vector<std::uint64_t>& bits() const noexcept { return bits_; }

 private:
  std::vector<std::uint64_t> bits_;
  std::uint64_t unique_ = 0;
  std::uint64_t duplicates_ = 0;
  std::uint64_t out_of_order_ = 0;
  std::uint64_t foreign_ = 0;
  std::uint64_t prev_seq_ = 0;
  bool have_seq_ = false;
};

// Judges every subscriber's tally against what the posts achieved: bit i of
// `accepted` is set when message i got a 2xx (`accepted_count` is its
// popcount), bit i of `unknown` when its outcome is unknown.
class delivery_verdict {
 public:
  delivery_verdict(std::vector<std::uint64_t> accepted, std::uint64_t accepted_count,
                   std::vector<std::uint64_t> unknown);

  void add(const delivery_tally& t);
  verify_totals totals() const;

 private:
  static std::uint64_t word(const std::vector<std::uint64_t>& v, std::size_t w) noexcept {
    return w < v.size() ? v[w] : 0;
  }

  const std::vector<std::uint64_t> accepted_;
  const std::uint64_t accepted_count_;
  const std::vector<std::uint64_t> unknown_;
  std::vector<std::uint64_t> lost_;          // accepted, missing somewhere
  std::vector<std::uint64_t> unknown_seen_;  // unknown, received somewhere
  std::vector<std::uint64_t> unknown_everywhere_;  // unknown, received by every subscriber so far
  verify_totals sum_;
};

}  // namespace feed::bot
