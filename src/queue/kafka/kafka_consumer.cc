#include "queue/kafka/kafka_consumer.h"

#include <algorithm>
#include <string_view>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "base/log.h"
#include "model/envelope.h"
#include "model/message.h"

namespace feed {

namespace {

using clock = std::chrono::steady_clock;

bool cooperative(rd_kafka_t* rk) { return std::string_view(rd_kafka_rebalance_protocol(rk)) == "COOPERATIVE"; }

// Commit refusals that mean "this member's view of the group is stale": the
// partitions now belong to someone who will re-deliver from the last commit.
bool rebalance_error(rd_kafka_resp_err_t err) {
  return err == RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS || err == RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION ||
         err == RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID || err == RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID ||
         err == RD_KAFKA_RESP_ERR__STATE;
}

std::string partition_names(const rd_kafka_topic_partition_list_t* parts) {
  std::string out;
  for (int i = 0; i < parts->cnt; ++i)
    out += fmt::format("{}{}[{}]", i ? ", " : "", parts->elems[i].topic, parts->elems[i].partition);
  return out.empty() ? "none" : out;
}

}  // namespace

kafka_consumer::kafka_consumer(const kafka_options& options) : options_(options) {}

result<std::unique_ptr<kafka_consumer>> kafka_consumer::create(const kafka_options& options) {
  std::unique_ptr<kafka_consumer> c(new kafka_consumer(options));
  const auto session = std::max<std::chrono::milliseconds::rep>(options.session_timeout.count(), 1000);
  kafka_properties properties{
      {"group.id", options.group_id},
      {"enable.auto.commit", "false"},
      {"enable.auto.offset.store", "false"},
      {"auto.offset.reset", "earliest"},
      {"enable.partition.eof", "false"},
      {"session.timeout.ms", std::to_string(session)},
      {"heartbeat.interval.ms", std::to_string(std::max<long long>(session / 4, 100))},
      // The processing order of a partition is what it is; keep idle
      // fetches short so a new record waits little.
      {"fetch.wait.max.ms", "100"},
  };
  if (!options.instance_id.empty()) properties.emplace_back("group.instance.id", options.instance_id);
  auto rk = make_handle(RD_KAFKA_CONSUMER, options, "worker", properties,
                        [raw = c.get()](rd_kafka_conf_t* conf) {
                          rd_kafka_conf_set_rebalance_cb(conf, &kafka_consumer::on_rebalance);
                          rd_kafka_conf_set_opaque(conf, raw);
                        });
  if (!rk) return rk.err();
  c->rk_ = std::move(*rk);
  // Client errors and logs are served by poll(), on the worker thread.
  rd_kafka_poll_set_consumer(c->rk_.get());

  if (!options.dead_letter_topic.empty()) {
    // Flushed before each commit, so it does not linger.
    auto dl = make_handle(RD_KAFKA_PRODUCER, options, "dead-letter",
                          reliable_producer_properties(options, std::chrono::milliseconds(0), false),
                          [raw = c.get()](rd_kafka_conf_t* conf) {
                            rd_kafka_conf_set_dr_msg_cb(conf, &kafka_consumer::on_dead_letter);
                            rd_kafka_conf_set_opaque(conf, raw);
                          });
    if (!dl) return dl.err();
    c->dead_letter_ = std::move(*dl);
  }

  kafka_partitions topics(rd_kafka_topic_partition_list_new(1));
  rd_kafka_topic_partition_list_add(topics.get(), options.events_topic.c_str(), RD_KAFKA_PARTITION_UA);
  if (const auto err = rd_kafka_subscribe(c->rk_.get(), topics.get()))
    return kafka_error(err, fmt::format("subscribing to {}", options.events_topic));
  return c;
}

kafka_consumer::~kafka_consumer() {
  if (rk_) close_consumer(rk_.get(), give_up_.cap(options_.session_timeout), joined_);
  if (dead_letter_) rd_kafka_flush(dead_letter_.get(), to_ms(give_up_.cap(options_.flush_timeout)));
}

void kafka_consumer::on_rebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts,
                                  void* opaque) {
  auto* self = static_cast<kafka_consumer*>(opaque);
  const bool coop = cooperative(rk);
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    spdlog::info("kafka consumer: assigned {}", partition_names(parts));
    self->settled_ = true;
    self->joined_ = true;
    {
      std::lock_guard lock(self->mu_);
      for (int i = 0; i < parts->cnt; ++i) self->owned_.insert(parts->elems[i].partition);
    }
    self->start_at_committed(parts);
    if (coop) {
      if (rd_kafka_error_t* e = rd_kafka_incremental_assign(rk, parts)) {
        spdlog::error("kafka consumer: assign failed: {}", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
      }
    } else {
      rd_kafka_assign(rk, parts);
    }
    return;
  }

  self->settled_ = false;
  if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS)
    spdlog::info("kafka consumer: revoked {}", partition_names(parts));
  else
    spdlog::warn("kafka consumer: rebalance error {}: dropping {}", rd_kafka_err2str(err), partition_names(parts));
  {
    std::lock_guard lock(self->mu_);
    for (int i = 0; i < parts->cnt; ++i) {
      const std::int32_t p = parts->elems[i].partition;
      self->owned_.erase(p);
      self->pending_.erase(p);
      self->committed_.erase(p);
      for (auto& [token, spans] : self->in_flight_) spans.erase(p);
    }
  }
  if (coop) {
    if (rd_kafka_error_t* e = rd_kafka_incremental_unassign(rk, parts)) {
      spdlog::error("kafka consumer: unassign failed: {}", rd_kafka_error_string(e));
      rd_kafka_error_destroy(e);
    }
  } else {
    rd_kafka_assign(rk, nullptr);
  }
}

// librdkafka fetches an assignment's committed offsets itself, but only
// once: when the group coordinator refuses that fetch as a whole ("not
// coordinator", as after a broker paused past the group session), it never
// asks again and never reads those partitions (librdkafka issue 5586, open
// in 2.x). So the offsets are fetched here, asked for again while refused,
// and the partitions assigned at them; an assignment with explicit offsets
// needs no fetch of librdkafka's. If no answer comes within the bound, the
// offsets are left for librdkafka to fetch, as before. Blocking here holds
// only this consumer's polling: its heartbeats run on librdkafka's threads.
void kafka_consumer::start_at_committed(rd_kafka_topic_partition_list_t* parts) {
  if (parts->cnt == 0) return;
  const auto until = clock::now() + give_up_.cap(std::max(options_.session_timeout, std::chrono::milliseconds(1000)));
  kafka_partitions asked(rd_kafka_topic_partition_list_copy(parts));
  for (int attempt = 1;; ++attempt) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - clock::now());
    if (left <= std::chrono::milliseconds(0) || closed_) break;
    auto err = rd_kafka_committed(rk_.get(), asked.get(), static_cast<int>(left.count()));
    for (int i = 0; !err && i < asked->cnt; ++i) err = asked->elems[i].err;
    if (!err) {
      // No committed offset: where auto.offset.reset (earliest) would start.
      for (int i = 0; i < parts->cnt; ++i) {
        const auto at = asked->elems[i].offset;
        parts->elems[i].offset = at >= 0 ? at : RD_KAFKA_OFFSET_BEGINNING;
      }
      if (attempt > 1)
        spdlog::info("kafka consumer: committed offsets of {} fetched at attempt {}", partition_names(parts),
                     attempt);
      return;
    }
    spdlog::warn("kafka consumer: fetching the committed offsets of {} (attempt {}): {}", partition_names(parts),
                 attempt, rd_kafka_err2str(err));
    std::this_thread::sleep_for(std::min(std::chrono::milliseconds(200),
                                         std::chrono::duration_cast<std::chrono::milliseconds>(until - clock::now())));
  }
  spdlog::warn("kafka consumer: committed offsets of {} not fetched in time; librdkafka fetches them",
               partition_names(parts));
}

void kafka_consumer::on_dead_letter(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
  auto* self = static_cast<kafka_consumer*>(opaque);
  if (m->err) {
    ++self->stats_.dead_letter_failed;
    spdlog::error("kafka consumer: could not write a record to dead-letter topic {}: {}",
                  self->options_.dead_letter_topic, rd_kafka_err2str(m->err));
  } else {
    ++self->stats_.dead_lettered;
  }
}

void kafka_consumer::skip(const rd_kafka_message_t& m, const std::string& why) {
  ++stats_.undecodable;
  const std::string where = fmt::format("{}[{}]@{}", rd_kafka_topic_name(m.rkt), m.partition, m.offset);
  spdlog::warn("kafka consumer: skipping record {}: {}", where, why);
  if (!dead_letter_) return;
  const auto err = rd_kafka_producev(
      dead_letter_.get(), RD_KAFKA_V_TOPIC(options_.dead_letter_topic.c_str()), RD_KAFKA_V_KEY(m.key, m.key_len),
      RD_KAFKA_V_VALUE(m.payload, m.len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
      RD_KAFKA_V_HEADER("feed-error", why.data(), static_cast<ssize_t>(why.size())),
      RD_KAFKA_V_HEADER("feed-source", where.data(), static_cast<ssize_t>(where.size())), RD_KAFKA_V_END);
  if (err) {
    ++stats_.dead_letter_failed;
    spdlog::error("kafka consumer: could not queue {} for dead-letter topic {}: {}", where,
                  options_.dead_letter_topic, rd_kafka_err2str(err));
  }
}

void kafka_consumer::merge(partition_spans& into, std::int32_t partition, const span& s) {
  auto [it, fresh] = into.try_emplace(partition, s);
  if (!fresh) {
    it->second.first = std::min(it->second.first, s.first);
    it->second.next = std::max(it->second.next, s.next);
  }
}

void kafka_consumer::merge(partition_spans& into, const partition_spans& from) {
  for (const auto& [p, s] : from) merge(into, p, s);
}

result<batch> kafka_consumer::poll(std::size_t max, std::chrono::milliseconds wait) {
  batch b;
  if (closed_) {
    b.end_of_stream = true;
    return b;
  }
  if (fatal_) {
    // Nothing more will come; waiting out `wait` keeps the worker from spinning.
    std::this_thread::sleep_for(wait);
    return b;
  }
  if (dead_letter_) rd_kafka_poll(dead_letter_.get(), 0);

  const auto deadline = clock::now() + wait;
  partition_spans taken;
  // Bounded even when every record is undecodable or an error event.
  const std::size_t limit = 2 * std::max<std::size_t>(max, 1) + 64;
  for (std::size_t i = 0; i < limit && b.messages.size() < max; ++i) {
    int timeout = 0;
    if (b.messages.empty()) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
      timeout = to_ms(left);
    }
    kafka_message m(rd_kafka_consumer_poll(rk_.get(), timeout));
    if (!m) {
      if (timeout == 0) break;
      continue;
    }
    if (m->err == RD_KAFKA_RESP_ERR__FATAL) {
      char why[512] = "";
      rd_kafka_fatal_error(rk_.get(), why, sizeof why);
      spdlog::error("kafka consumer failed fatally: {}. This instance's worker reads nothing more; the group's "
                    "other members take its partitions. With --kafka-instance-id, another live instance uses the "
                    "same id: give each its own, then restart this one",
                    why);
      fatal_ = true;
      stats_.failed_fatally = 1;
      break;
    }
    if (m->err) {
      // Consumer errors are informational (a missing topic, a lost broker);
      // librdkafka keeps retrying by itself.
      spdlog::warn("kafka consumer: {}", rd_kafka_message_errstr(m.get()));
      continue;
    }
    merge(taken, m->partition, span{m->offset, m->offset + 1});
    auto msg = decode_envelope_message(
        std::string_view(static_cast<const char*>(m->payload), m->payload ? m->len : 0));
    if (!msg) {
      skip(*m, msg.err().message);
      continue;
    }
    // Skipped here, not refused by the store: there it would fail its whole
    // batch on every retry, and the worker would store nothing more.
    if (auto why = unstorable_reason(*msg); !why.empty()) {
      skip(*m, why);
      continue;
    }
    b.messages.push_back(std::move(*msg));
  }

  std::lock_guard lock(mu_);
  // A rebalance inside rd_kafka_consumer_poll may have taken partitions away.
  std::erase_if(taken, [&](const auto& kv) { return !owned_.contains(kv.first); });
  merge(pending_, taken);
  if (b.messages.empty()) return b;
  stats_.received += b.messages.size();
  b.token = next_token_++;
  in_flight_.emplace(b.token, std::move(pending_));
  pending_.clear();
  return b;
}

// The batches come in the order polled, each one's records in a partition
// following the previous one's, so the end of the last is the offset to
// commit for all of them.
result<void> kafka_consumer::commit(std::span<const batch> batches) {
  kafka_partitions offsets(rd_kafka_topic_partition_list_new(4));
  const auto forget = [&] {
    for (const auto& b : batches) in_flight_.erase(b.token);
  };
  {
    std::lock_guard lock(mu_);
    std::map<std::int32_t, std::int64_t> ends;
    for (const auto& b : batches) {
      auto it = in_flight_.find(b.token);
      if (it == in_flight_.end()) continue;
      for (const auto& [p, s] : it->second) ends[p] = std::max(ends[p], s.next);
    }
    for (const auto& [p, next] : ends) {
      auto c = committed_.find(p);
      if (c != committed_.end() && c->second >= next) continue;
      rd_kafka_topic_partition_list_add(offsets.get(), options_.events_topic.c_str(), p)->offset = next;
    }
    if (offsets->cnt == 0) {
      forget();
      return {};
    }
  }

  // Copies of skipped records go out before the offsets that skip them.
  if (dead_letter_ && rd_kafka_flush(dead_letter_.get(), to_ms(give_up_.cap(options_.commit_timeout))) != 0) {
    ++stats_.commit_failures;
    return error(errc::unavailable, fmt::format("dead-letter topic {} did not acknowledge within {} ms",
                                                options_.dead_letter_topic, options_.commit_timeout.count()));
  }

  kafka_queue q(rd_kafka_queue_new(rk_.get()));
  rd_kafka_resp_err_t err = rd_kafka_commit_queue(rk_.get(), offsets.get(), q.get(), nullptr, nullptr);
  if (!err) {
    const auto wait = give_up_.cap(options_.commit_timeout);
    kafka_event ev(rd_kafka_queue_poll(q.get(), to_ms(wait)));
    if (!ev) {
      ++stats_.commit_failures;
      return error(errc::timeout, fmt::format("offset commit not answered within {} ms", wait.count()));
    }
    err = rd_kafka_event_error(ev.get());
    if (const auto* parts = rd_kafka_event_topic_partition_list(ev.get()))
      for (int i = 0; i < parts->cnt && !err; ++i) err = parts->elems[i].err;
  }
  if (err == RD_KAFKA_RESP_ERR__NO_OFFSET) {
    // Nothing new to commit.
  } else if (rebalance_error(err)) {
    spdlog::info("kafka consumer: commit refused during a rebalance ({}); records will be re-delivered",
                 rd_kafka_err2name(err));
  } else if (err) {
    ++stats_.commit_failures;
    return kafka_error(err, "committing offsets");
  }

  ++stats_.commits;
  std::lock_guard lock(mu_);
  for (int i = 0; i < offsets->cnt; ++i) {
    auto& c = committed_[offsets->elems[i].partition];
    c = std::max(c, offsets->elems[i].offset);
  }
  forget();
  return {};
}

void kafka_consumer::fail(const batch& b, std::error_code why) {
  kafka_partitions rewind(rd_kafka_topic_partition_list_new(4));
  // The worker may have moved the batch's messages on; its spans still
  // tell how many records go back.
  std::int64_t records = 0;
  {
    std::lock_guard lock(mu_);
    auto it = in_flight_.find(b.token);
    if (it == in_flight_.end()) return;
    for (const auto& [p, s] : it->second) {
      rd_kafka_topic_partition_list_add(rewind.get(), options_.events_topic.c_str(), p)->offset = s.first;
      records += s.next - s.first;
    }
    // Later batches of these partitions are re-read after the seek; their
    // offsets must not be committed over the failed batch.
    in_flight_.clear();
    pending_.clear();
  }
  spdlog::warn("kafka consumer: a batch of {} record(s) failed ({}); rewinding {} partition(s) to it", records,
               why.message(), rewind->cnt);
  if (rewind->cnt == 0) return;
  if (rd_kafka_error_t* e = rd_kafka_seek_partitions(rk_.get(), rewind.get(), to_ms(options_.commit_timeout))) {
    // The worker fails a batch only on its way out, so no later commit
    // skips these records; the next consumer of the group reads them again.
    spdlog::error("kafka consumer: rewind failed: {}", rd_kafka_error_string(e));
    rd_kafka_error_destroy(e);
  }
}

void kafka_consumer::close() { closed_ = true; }

}  // namespace feed
