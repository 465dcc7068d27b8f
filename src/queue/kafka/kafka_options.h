// Settings of every Kafka component (publisher, consumer, processed sink,
// subscriber, topic set-up). One struct so the app fills it once from its
// configuration; each component reads the fields it needs.
//
// Defaults match the reference deployment: topics events-to-process and
// events-processed, consumer group message-group.
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

namespace feed {

struct kafka_options {
  // bootstrap.servers: comma-separated host:port list.
  std::string brokers = "127.0.0.1:9092";
  // client.id prefix; each handle appends its role ("-publisher", ...) so
  // broker logs and quotas tell them apart.
  std::string client_id = "feed-api";
  // Consumer group of the workers reading events-to-process.
  std::string group_id = "message-group";

  // Accepted messages, API -> worker.
  std::string events_topic = "events-to-process";
  // Stored messages with their seq, worker -> every API instance.
  std::string processed_topic = "events-processed";
  // Where undecodable records of events_topic are copied before they are
  // skipped; empty disables the copy (they are only logged and counted).
  std::string dead_letter_topic;

  // Used only when ensure_topics() creates a topic; existing topics keep
  // their layout. More partitions let more workers share the load.
  int events_partitions = 3;
  int processed_partitions = 3;
  // -1 leaves it to the brokers' default.replication.factor, so the same
  // command line suits one broker in development and a cluster in
  // production (where the brokers say 3).
  int replication_factor = -1;

  // Producer batching (linger.ms: the producer of accepted posts only;
  // batch.num.messages) and the bound of its local queue (queue.buffering.max.messages); past it publish fails fast
  // with errc::queue_full instead of buffering without limit.
  // Every post waits for its acknowledgement, so the linger is paid by each
  // one that finds the queue empty (at low rates, all of them). Under load
  // the one request in flight per connection batches by itself: at 2 ms
  // wrk -c256 got 1.18-1.35x the posts/s of 5 ms at no more CPU per post,
  // while 0-1 ms made the broker thread wake per few posts
  // (docs/PERFORMANCE.md, "Seventh round").
  std::chrono::milliseconds linger{2};
  int batch_messages = 10000;
  int queue_max_messages = 100000;

  // How long a produced record may wait for its acknowledgement before the
  // publisher reports errc::timeout (message.timeout.ms, which bounds
  // retries too). Keep it below the API's own request deadline.
  std::chrono::milliseconds delivery_timeout{10000};
  // Per-request network timeout (request.timeout.ms / socket.timeout.ms).
  std::chrono::milliseconds request_timeout{5000};
  // Metadata, topic creation and offset look-ups at start-up.
  std::chrono::milliseconds admin_timeout{10000};
  // Bound of one readiness probe (a metadata request); the answer is cached
  // for ready_cache so /api/ready does not hit the broker per request.
  std::chrono::milliseconds ready_timeout{1000};
  std::chrono::milliseconds ready_cache{1000};
  // Bound of a synchronous offset commit.
  std::chrono::milliseconds commit_timeout{5000};
  // How long stop() waits for queued records to be acknowledged; what is
  // left then fails with errc::shutting_down.
  std::chrono::milliseconds flush_timeout{5000};
  // Consumer group session (session.timeout.ms): how soon a dead worker's
  // partitions move to the others.
  std::chrono::milliseconds session_timeout{10000};
  // group.instance.id of this instance's worker: static membership
  // (KIP-345). Empty: a new member per start, as the reference's workers.
  // With an id, a restarted instance takes its partitions back at once,
  // without a rebalance, even before the dead process's session has ended;
  // a stopped one does not leave the group, so its partitions wait for it
  // up to the session timeout. Each live instance needs its own id: a
  // second member with the same one fences the first.
  std::string instance_id;

  // Raw librdkafka properties applied last, for tuning without a rebuild
  // (e.g. {"compression.type", "lz4"}). Invalid names fail at creation.
  std::vector<std::pair<std::string, std::string>> extra_config;
};

}  // namespace feed
