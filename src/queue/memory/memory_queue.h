// The embedded queue: a bounded in-process FIFO between the HTTP threads and
// the worker.
//
// Durability comes from the store, not from this queue: a publish completes
// only when the worker commits the batch holding it, so a 202 in embedded
// mode means "committed to SQLite". Past `capacity` waiting messages publish
// fails at once with errc::queue_full, which the API turns into a 503.
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <unordered_map>

#include "queue/memory/hash_counts.h"
#include "queue/queue.h"

namespace feed {

class memory_queue final : public queue_writer, public queue_reader {
 public:
  explicit memory_queue(std::size_t capacity);

  void enqueue(message m, enqueue_done done) override;
  result<void> ready() override;
  bool withdraw(const std::string& id) override;
  // Every error of this queue means not stored: it refuses at the door,
  // withdraws, or fails a batch that the store did not take.
  bool known_not_stored(std::error_code ec) const override { return bool(ec); }
  bool settles_at_storage() const override { return true; }

  result<batch> poll(std::size_t max, std::chrono::milliseconds wait) override;
  using queue_reader::commit;
  result<void> commit(std::span<const batch> batches) override;
  void fail(const batch& b, std::error_code why) override;

  // No new messages; poll() drains what is queued, then reports end_of_stream.
  void close();
  std::size_t size() const;

 private:
  void commit_one(const batch& b);

  struct item {
    message msg;
    enqueue_done done;
    std::size_t id_hash;
  };
  // A batch the worker holds: the waiters, and a hash of each message's id
  // so that withdraw() can tell a copy in it (a collision only makes an
  // outcome "unknown" that was "not stored").
  struct taken_batch {
    std::vector<enqueue_done> acks;
    std::vector<std::size_t> id_hashes;
  };

  const std::size_t capacity_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<item> items_;                                        // GUARDED_BY(mu_)
  // How many items_ hold each id's hash: withdraw() looks for that many
  // and stops, instead of reading the whole queue for copies of a keyed
  // post (quadratic when a stalled store times out a full queue).
  hash_counts waiting_;                                           // GUARDED_BY(mu_)
  std::unordered_map<std::uint64_t, taken_batch> in_flight_;     // GUARDED_BY(mu_)
  std::uint64_t next_token_ = 1;                                  // GUARDED_BY(mu_)
  bool closed_ = false;                                           // GUARDED_BY(mu_)
};

}  // namespace feed
