// The store: where accepted messages live, and where their feed order (seq)
// is decided.
//
// Contract shared by every implementation (SQLite, PostgreSQL wire):
// - insert_batch is idempotent by message id: a message already stored keeps
//   its first seq and is returned with it, so a redelivered batch is harmless.
// - New messages get consecutive seq values, starting after the highest seq
//   committed so far, in the same transaction as their insert: seq order is
//   commit order and has no holes.
// - Every method may be called from any thread; implementations serialize
//   writers internally. Calls block; run them off the network threads.
// - Failures are values: errc::unavailable when the database cannot be
//   reached (worth retrying), errc::storage otherwise.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"
#include "model/message.h"

namespace feed {

struct read_query {
  seq_t after{0};                   // only seq > after
  std::optional<seq_t> up_to;       // only seq <= up_to
  std::size_t limit = 100;          // at most this many rows
  bool newest_first = false;        // order by seq descending (then limit)
  std::optional<std::string> user_id;  // only this author
};

class store {
 public:
  virtual ~store() = default;

  // Stores the messages that are not stored yet and returns every message of
  // the batch as stored (with seq), in seq order, duplicates included.
  virtual result<std::vector<message>> insert_batch(std::span<const message> batch) = 0;

  virtual result<std::vector<message>> read(const read_query& q) = 0;

  // Highest committed seq (0 when empty).
  virtual result<seq_t> max_seq() = 0;

  // Cheap round trip for readiness checks.
  virtual result<void> ping() = 0;
};

}  // namespace feed
