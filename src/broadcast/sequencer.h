// Puts stored messages back into feed order before they are broadcast.
//
// Messages may arrive out of order (several Kafka partitions, several
// workers) or twice (redelivery). push() returns the run of messages that can
// now be delivered in strict seq order, each seq exactly once; the rest wait
// until the hole before them is filled. hole() names the missing range so the
// caller can fetch it from the store when it does not arrive by itself.
//
// Not thread-safe: the owner serializes calls.
#pragma once

#include <map>
#include <optional>
#include <vector>

#include "model/message.h"

namespace feed {

class sequencer {
 public:
  // `last` is the highest seq already delivered (the store's max at start).
  explicit sequencer(seq_t last, std::size_t max_pending = 100'000);

  std::vector<message> push(std::vector<message> batch);

  seq_t last() const { return last_; }
  std::size_t pending() const { return pending_.size(); }

  struct range {
    seq_t first, last;  // inclusive
  };
  // The seqs between last() and the lowest waiting message, if any wait.
  std::optional<range> hole() const;

  // Skips ahead when the waiting set grows past max_pending (a hole that
  // cannot be filled must not grow memory without bound); returns what can be
  // delivered then. Callers log it: it means messages were skipped.
  std::vector<message> give_up_on_hole();

 private:
  std::vector<message> drain();

  seq_t last_;
  const std::size_t max_pending_;
  std::map<std::int64_t, message> pending_;
};

}  // namespace feed
