// The store: where accepted messages live, and where their feed order (seq)
// is decided.
//
// Contract shared by every implementation (SQLite, PostgreSQL wire):
// - insert_batch is idempotent by message id: a message already stored keeps
//   its first seq and is returned with it, so a redelivered batch is harmless.
// - insert_batch works on the caller's batch in place: the common batch,
//   every message new, gets its seqs set where it lies, without a copy of
//   any message.
// - New messages get consecutive seq values, starting after the highest seq
//   committed so far, in the same transaction as their insert: seq order is
//   commit order and has no holes.
// - Every method may be called from any thread; implementations serialize
//   writers internally. Calls block; run them off the network threads.
// - Failures are values: errc::unavailable when the database cannot be
//   reached (worth retrying), errc::storage otherwise.
#pragma once

#include <chrono>
#include <cstddef>
#include <mutex>
#include <optional>
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

// What insert_batch says besides the batch as stored.
struct insert_report {
  // Empty when every message of the batch was new. Otherwise (an id stored
  // before the call, or one the batch repeats) the batch as it was given,
  // moved out rather than copied: the batch as stored may then differ from
  // it in more than seq, since the first content stored for an id wins, and
  // a caller that compares the two (the worker, looking for a reused
  // Idempotency-Key) has both.
  std::vector<message> as_given;
  // Rows this call added: the batch's distinct ids that were not stored
  // before it (a post retried while its first copy was in the batch, or
  // stored earlier, adds none).
  std::size_t inserted = 0;

  bool all_new() const { return as_given.empty(); }
};

class store {
 public:
  virtual ~store() = default;

  // Stores the messages of `batch` that are not stored yet. On success
  // `batch` holds every message of the batch as stored (with seq), in seq
  // order, duplicates included. When every message was new those are the
  // same messages in the same order, each given its seq in place (and, in
  // PostgreSQL, its id in canonical form). On failure `batch` is left as it
  // was, so the call can be retried with it.
  virtual result<insert_report> insert_batch(std::vector<message>& batch) = 0;

  virtual result<std::vector<message>> read(const read_query& q) = 0;

  // The stored message with this id, or nothing when none is (or when `id`
  // cannot be a stored id).
  virtual result<std::optional<message>> find(const std::string& id) = 0;

  // Highest committed seq (0 when empty).
  virtual result<seq_t> max_seq() = 0;

  // Cheap round trip for readiness checks.
  virtual result<void> ping() = 0;

  // Whether writes work: an error when the last insert_batch failed (until
  // one succeeds) or when one has been running for longer than
  // `stall_limit`. A store that answers reads but cannot write (a full or
  // hung disk, a lock held elsewhere) is not ready.
  virtual result<void> write_status(std::chrono::milliseconds stall_limit) = 0;

  // From a stop: from `deadline` on, a call waiting for a lock held
  // elsewhere gives up (errc::unavailable) instead of waiting out its own
  // timeout. Without it a database locked from outside held a stop for one
  // lock timeout per batch still queued. The default does nothing, for a
  // store whose waits are bounded otherwise.
  virtual void stop_waiting_at(std::chrono::steady_clock::time_point deadline) { (void)deadline; }
};

// Tracks a store's writes for write_status().
class write_health {
 public:
  // Runs `write` (returning a result), noting when it started and how it ended.
  template <class F>
  auto track(F&& write) {
    {
      std::lock_guard lock(mu_);
      started_ = std::chrono::steady_clock::now();
    }
    auto r = write();
    std::lock_guard lock(mu_);
    started_.reset();
    if (r) last_failure_.reset();
    else last_failure_ = r.err();
    return r;
  }

  result<void> status(std::chrono::milliseconds stall_limit) const {
    std::lock_guard lock(mu_);
    if (last_failure_)
      return error(last_failure_->code, "the last write failed: " + last_failure_->message);
    if (!started_) return {};
    const auto running = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - *started_);
    if (running > stall_limit)
      return error(errc::timeout, "a write has been running for " + std::to_string(running.count()) + " ms");
    return {};
  }

 private:
  mutable std::mutex mu_;
  std::optional<std::chrono::steady_clock::time_point> started_;  // GUARDED_BY(mu_)
  std::optional<error> last_failure_;                              // GUARDED_BY(mu_)
};

}  // namespace feed
