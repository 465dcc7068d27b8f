#include "queue/kafka/kafka_publisher.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "base/log.h"
#include "base/thread_name.h"
#include "model/envelope.h"
#include "queue/kafka/producer_state.h"
#include "queue/kafka/topics.h"

namespace feed {

namespace {

// How often librdkafka reports the producer's state (producer_state.h):
// ready() turns true at most this long after the producer id arrives. The
// reports cost about 3 ms of CPU a second (measured idle), nearly all of it
// librdkafka's main thread writing them; reading one here takes microseconds,
// wherever the reports are served.
constexpr std::chrono::milliseconds state_interval{250};

}  // namespace

kafka_publisher::kafka_publisher(const kafka_options& options) : options_(options) {}

result<std::unique_ptr<kafka_publisher>> kafka_publisher::create(const kafka_options& options) {
  std::unique_ptr<kafka_publisher> p(new kafka_publisher(options));
  auto rk = make_handle(RD_KAFKA_PRODUCER, options, "publisher",
                        reliable_producer_properties(options, options.linger, true),
                        [raw = p.get()](rd_kafka_conf_t* conf) {
                          rd_kafka_conf_set_dr_msg_cb(conf, &kafka_publisher::on_delivery);
                          rd_kafka_conf_set_stats_cb(conf, &kafka_publisher::on_statistics);
                          // After options.extra_config: ready() depends on it.
                          rd_kafka_conf_set(conf, "statistics.interval.ms",
                                            std::to_string(state_interval.count()).c_str(), nullptr, 0);
                          rd_kafka_conf_set_opaque(conf, raw);
                        });
  if (!rk) return rk.err();
  p->rk_ = std::move(*rk);
  p->poller_ = std::thread([raw = p.get()] {
    name_this_thread("kafka-reports");
    raw->poll_loop();
  });
  return p;
}

kafka_publisher::~kafka_publisher() {
  stop();
  rk_.reset();  // before the fd it may still signal
  if (report_fd_ >= 0) ::close(report_fd_);
}

void* done_slots::put(enqueue_done done) {
  slot* s;
  {
    std::lock_guard lock(mu_);
    if (!free_) {
      auto chunk = std::make_unique<slot[]>(chunk_slots);
      for (std::size_t i = 0; i < chunk_slots; ++i) chunk[i].next = i + 1 < chunk_slots ? &chunk[i + 1] : nullptr;
      free_ = &chunk[0];
      chunks_.push_back(std::move(chunk));
    }
    s = free_;
    free_ = s->next;
  }
  s->done = std::move(done);
  return s;
}

enqueue_done done_slots::take(void* opaque) {
  auto* s = static_cast<slot*>(opaque);
  enqueue_done done = std::move(s->done);
  s->done = nullptr;
  std::lock_guard lock(mu_);
  s->next = free_;
  free_ = s;
  return done;
}

void kafka_publisher::on_delivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
  auto* self = static_cast<kafka_publisher*>(opaque);
  const enqueue_done done = self->slots_.take(m->_private);
  if (m->err) {
    ++self->stats_.failed;
    spdlog::debug("kafka publisher: delivery failed: {}", rd_kafka_err2str(m->err));
    // Timed out or failed before it left the producer (the broker paused,
    // say): certainly not written. A stop's purge keeps its own meaning.
    const auto why = errc_for(m->err);
    const bool never_sent = rd_kafka_message_status(m) == RD_KAFKA_MSG_STATUS_NOT_PERSISTED;
    done(make_error_code(never_sent && why != errc::shutting_down ? errc::not_sent : why));
  } else {
    ++self->stats_.published;
    done({});
  }
}

int kafka_publisher::on_statistics(rd_kafka_t*, char* json, std::size_t size, void* opaque) {
  auto* self = static_cast<kafka_publisher*>(opaque);
  const auto state = idempotence_state(std::string_view(json, size));
  std::lock_guard lock(self->state_mu_);
  self->producer_state_ = state ? std::string(*state) : std::string("not reported");
  return 0;  // librdkafka frees the document
}

void kafka_publisher::poll_loop() {
  // The timeout only bounds how late polling_ is noticed; reports wake it.
  while (polling_.load(std::memory_order_relaxed)) rd_kafka_poll(rk_.get(), 100);
}

result<int> kafka_publisher::hand_over_reports() {
  if (report_fd_ >= 0) return report_fd_;
  const int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) return error(errc::unavailable, fmt::format("eventfd: {}", std::strerror(errno)));
  polling_ = false;
  if (poller_.joinable()) poller_.join();
  report_fd_ = fd;
  // librdkafka writes this to the fd when its queue of reports was empty
  // (and not since served); an eventfd adds it to its counter.
  static const std::uint64_t one = 1;
  kafka_queue reports(rd_kafka_queue_get_main(rk_.get()));
  rd_kafka_queue_io_event_enable(reports.get(), fd, &one, sizeof one);
  return fd;
}

void kafka_publisher::serve_reports() {
  // Cleared first: a report queued after the poll below signals again.
  std::uint64_t signalled;
  if (report_fd_ >= 0 && ::read(report_fd_, &signalled, sizeof signalled) < 0 && errno != EAGAIN)
    spdlog::debug("kafka publisher: reading the report signal: {}", std::strerror(errno));
  rd_kafka_poll(rk_.get(), 0);
}

void kafka_publisher::enqueue(message m, enqueue_done done) {
  std::shared_lock lock(produce_mu_);
  if (stopped_) {
    lock.unlock();
    done(errc::shutting_down);
    return;
  }
  // librdkafka copies the value (RD_KAFKA_MSG_F_COPY, into the same
  // allocation as the record), so one buffer per thread serves every post.
  thread_local std::string value;
  encode_envelope_into(value, m, event_message_created, false);
  void* opaque = slots_.put(std::move(done));
  const auto err = rd_kafka_producev(
      rk_.get(), RD_KAFKA_V_TOPIC(options_.events_topic.c_str()),
      RD_KAFKA_V_KEY(m.user_id.data(), m.user_id.size()),
      RD_KAFKA_V_VALUE(value.data(), value.size()), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
      RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
  lock.unlock();
  // A rare large post does not pin its size in every thread for good.
  if (value.capacity() > 64 * 1024) std::string().swap(value);
  if (err) {
    ++stats_.failed;
    // A fatal producer error surfaces here as __FATAL: unavailable, as documented.
    slots_.take(opaque)(make_error_code(errc_for(err)));
  }
}

result<void> kafka_publisher::ready() {
  {
    std::shared_lock produce(produce_mu_);
    if (stopped_) return error(errc::shutting_down, "Kafka publisher is stopped");
  }
  if (auto reachable = broker_ready(); !reachable) return reachable;
  // A full local queue refuses posts (errc::queue_full) as surely as a lost
  // broker; a balancer should send them elsewhere meanwhile.
  if (const int queued = rd_kafka_outq_len(rk_.get()); queued >= options_.queue_max_messages)
    return error(errc::queue_full, fmt::format("the producer's queue holds {} records, its bound", queued));
  return producer_id();
}

result<void> kafka_publisher::broker_ready() {
  std::lock_guard lock(ready_mu_);
  const auto now = std::chrono::steady_clock::now();
  if (ready_checked_ != std::chrono::steady_clock::time_point{} && now - ready_checked_ < options_.ready_cache)
    return ready_result_;
  char why[512];
  if (const auto fatal = rd_kafka_fatal_error(rk_.get(), why, sizeof why)) {
    ready_result_ = error(errc::unavailable, fmt::format("Kafka producer failed fatally: {}", why));
  } else if (auto parts = topic_partitions(rk_.get(), options_.events_topic, options_.ready_timeout); !parts) {
    ready_result_ = error(errc::unavailable, parts.err().message);
  } else {
    ready_result_ = {};
  }
  ready_checked_ = std::chrono::steady_clock::now();
  return ready_result_;
}

result<void> kafka_publisher::producer_id() {
  std::lock_guard lock(state_mu_);
  if (producer_state_ == producer_id_assigned) return {};
  if (producer_state_.empty())
    return error(errc::unavailable, "the Kafka producer has not reported its state yet; posts would wait for it");
  return error(errc::unavailable,
               fmt::format("the Kafka producer has no producer id (idempotence state {}); posts would wait for one",
                           producer_state_));
}

void kafka_publisher::stop() {
  {
    std::unique_lock lock(produce_mu_);
    if (stopped_) return;
    stopped_ = true;
  }
  if (!rk_) return;
  // flush() serves delivery reports itself, concurrently with the poller.
  if (rd_kafka_flush(rk_.get(), to_ms(options_.flush_timeout)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    spdlog::warn("kafka publisher: {} records not acknowledged within {} ms; failing them",
                 rd_kafka_outq_len(rk_.get()), options_.flush_timeout.count());
  }
  polling_ = false;
  if (poller_.joinable()) poller_.join();
  // Purged records report __PURGE_* (shutting_down) on the next polls.
  rd_kafka_purge(rk_.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
  for (int i = 0; i < 50 && rd_kafka_outq_len(rk_.get()) > 0; ++i) rd_kafka_poll(rk_.get(), 100);
  if (const int left = rd_kafka_outq_len(rk_.get()); left > 0)
    spdlog::warn("kafka publisher: {} requests still pending after purge", left);
  // The handle itself lives until the destructor, so a ready() racing this
  // stop() still has a valid handle to ask.
}

}  // namespace feed
