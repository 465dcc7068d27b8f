// consumer of events-to-process: the worker side of the Kafka queue.
//
// Joins options.group_id and subscribes to options.events_topic; the group
// spreads partitions over the workers. Nothing is committed automatically:
// commit(batches) synchronously commits, per partition, the offset after the
// last record of the batches, in one round trip, so a crash between poll and
// commit re-delivers them (the store's idempotent insert drops the copies).
//
// Records that are not a valid envelope are logged, counted, copied to
// options.dead_letter_topic when one is set, and skipped: they never block
// their partition. Their offsets ride along with the next batch returned,
// so committing it moves past them.
//
// Rebalances: partitions taken from this consumer lose their uncommitted
// offsets here, so a late commit never rewinds the new owner; the new owner
// re-delivers those records (duplicates, harmless). A commit refused because
// the group is rebalancing counts as done for the same reason.
//
// fail(batch) seeks its partitions back to the batch's first records, so
// they are delivered again instead of being skipped by a later commit.
//
// Threads: poll(), commit() and fail() belong to the worker thread (the
// rebalance callback runs inside poll()). close() and stats() may be called
// from any thread. The destructor leaves the group within
// options.session_timeout.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <unordered_map>

#include "base/stop_deadline.h"
#include "queue/kafka/kafka_options.h"
#include "queue/kafka/rdkafka_handle.h"
#include "queue/queue.h"

namespace feed {

struct kafka_consumer_stats {
  std::atomic<std::uint64_t> received{0};            // valid messages handed out
  std::atomic<std::uint64_t> undecodable{0};         // skipped records
  std::atomic<std::uint64_t> dead_lettered{0};       // copies acknowledged by the dead-letter topic
  std::atomic<std::uint64_t> dead_letter_failed{0};  // copies that could not be written
  std::atomic<std::uint64_t> commits{0};
  std::atomic<std::uint64_t> commit_failures{0};
  // 1 once librdkafka reported a fatal error (a static member fenced by
  // another instance with its id): the worker reads nothing more.
  std::atomic<std::uint64_t> failed_fatally{0};
};

class kafka_consumer final : public queue_reader {
 public:
  // Fails only on invalid settings (errc::invalid_input); the group is
  // joined in the background and shows up as records arriving in poll().
  static result<std::unique_ptr<kafka_consumer>> create(const kafka_options& options);
  ~kafka_consumer() override;
  kafka_consumer(const kafka_consumer&) = delete;
  kafka_consumer& operator=(const kafka_consumer&) = delete;

  result<batch> poll(std::size_t max, std::chrono::milliseconds wait) override;
  // One offset commit for all the batches. errc::timeout or
  // errc::unavailable when the broker did not take it; the batches stay
  // committable, so retrying is right.
  using queue_reader::commit;
  result<void> commit(std::span<const batch> batches) override;
  void fail(const batch& b, std::error_code why) override;
  // A commit waits for its answer until the deadline at most, and the
  // destructor's leaving of the group until then (an unreachable broker
  // would otherwise hold each for options.commit_timeout and
  // options.session_timeout).
  void stop_waiting_at(std::chrono::steady_clock::time_point deadline) override { give_up_.set(deadline); }

  // From now on poll() returns end_of_stream at once. Uncommitted records
  // stay in Kafka for the next consumer of the group.
  void close();

  const kafka_consumer_stats& stats() const { return stats_; }
  // A member of the group holding its assignment (of partitions, or of
  // none): not waiting to join it, nor in the middle of a rebalance. Once a
  // consumer has been a member it leaves the group when destroyed, so the
  // others' next rebalance does not wait for its session.
  bool member() const { return settled_; }

 private:
  struct span {
    std::int64_t first;  // offset of the first record taken
    std::int64_t next;   // offset after the last record taken
  };
  using partition_spans = std::map<std::int32_t, span>;

  explicit kafka_consumer(const kafka_options& options);
  static void on_rebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts,
                           void* opaque);
  // Sets `parts`' offsets to their committed ones (see the definition).
  void start_at_committed(rd_kafka_topic_partition_list_t* parts);
  static void on_dead_letter(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque);
  void skip(const rd_kafka_message_t& m, const std::string& why);
  // Widens into's span of the partition to cover `s` as well.
  static void merge(partition_spans& into, std::int32_t partition, const span& s);
  static void merge(partition_spans& into, const partition_spans& from);

  const kafka_options options_;
  kafka_handle rk_;
  kafka_handle dead_letter_;  // null when options.dead_letter_topic is empty
  kafka_consumer_stats stats_;
  stop_deadline give_up_;  // stop_waiting_at's
  std::atomic<bool> closed_{false};
  // librdkafka reported a fatal error (a static member fenced by another
  // with its group.instance.id): the consumer will deliver nothing more.
  bool fatal_ = false;  // the polling thread's
  // The last rebalance event was an assignment (even of no partition).
  std::atomic<bool> settled_{false};
  // Some rebalance assigned this consumer (even no partition): a member of
  // the group, which must leave it when stopped, also in the middle of a
  // later rebalance. Only one that never joined is destroyed without
  // leaving.
  std::atomic<bool> joined_{false};

  std::mutex mu_;
  std::set<std::int32_t> owned_;                                 // GUARDED_BY(mu_)
  partition_spans pending_;                                      // GUARDED_BY(mu_) taken, not yet in a batch
  std::unordered_map<std::uint64_t, partition_spans> in_flight_;  // GUARDED_BY(mu_) by batch token
  std::map<std::int32_t, std::int64_t> committed_;               // GUARDED_BY(mu_) highest committed next offset
  std::uint64_t next_token_ = 1;                                 // GUARDED_BY(mu_)
};

}  // namespace feed
