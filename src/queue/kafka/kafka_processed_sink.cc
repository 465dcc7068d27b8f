#include "queue/kafka/kafka_processed_sink.h"

#include <thread>

#include <fmt/format.h>

#include "base/log.h"
#include "model/envelope.h"

namespace feed {

namespace {

using clock = std::chrono::steady_clock;

// Only a bound: send() flushes as soon as its records are queued.
constexpr std::chrono::milliseconds batch_linger{50};

// Outcome of one send() call. Shared with the delivery reports, which
// may arrive after the call gave up waiting: each record holds a reference
// (the record's opaque is the state itself, not a heap-allocated
// shared_ptr per record), and the last one to let go frees it.
struct call_state {
  // The caller's reference plus one per record not yet reported.
  std::atomic<std::size_t> refs{1};
  std::atomic<int> first_error{RD_KAFKA_RESP_ERR_NO_ERROR};

  std::size_t pending() const { return refs.load(std::memory_order_acquire) - 1; }
  void release() {
    if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }
};

}  // namespace

kafka_processed_sink::kafka_processed_sink(const kafka_options& options) : options_(options) {}

result<std::unique_ptr<kafka_processed_sink>> kafka_processed_sink::create(const kafka_options& options) {
  std::unique_ptr<kafka_processed_sink> s(new kafka_processed_sink(options));
  // send() hands over a whole stored batch and then flushes it, which
  // sends every partition's records at once, whatever the linger. Waiting
  // for the linger instead would delay every live event (by far more than
  // linger.ms once the machine is busy: ~80 ms at 1,000 subscribers x 100
  // msg/s). Without any linger the broker thread sends the first record or
  // two the moment they are queued, and then the idempotent producer holds
  // the rest back until those are acknowledged (a partition's window is 5
  // messages), its thread polling with a zero timeout all that while: a
  // linger lets the whole batch be queued first, and it leaves in one
  // request per partition.
  auto rk = make_handle(RD_KAFKA_PRODUCER, options, "processed",
                        reliable_producer_properties(options, batch_linger, false),
                        [raw = s.get()](rd_kafka_conf_t* conf) {
                          rd_kafka_conf_set_dr_msg_cb(conf, &kafka_processed_sink::on_delivery);
                          rd_kafka_conf_set_opaque(conf, raw);
                        });
  if (!rk) return rk.err();
  s->rk_ = std::move(*rk);
  return s;
}

kafka_processed_sink::~kafka_processed_sink() {
  if (!rk_) return;
  // Past stop_waiting_at's deadline nothing is waited for but the purge's
  // reports, briefly.
  if (rd_kafka_flush(rk_.get(), to_ms(give_up_.cap(options_.flush_timeout))) != RD_KAFKA_RESP_ERR_NO_ERROR)
    spdlog::warn("kafka processed sink: dropping {} unacknowledged records", rd_kafka_outq_len(rk_.get()));
  // Purged records still report, which frees their call state.
  rd_kafka_purge(rk_.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
  const bool late = give_up_.passed();
  const int rounds = late ? 20 : 50;
  const int wait_ms = late ? 10 : 100;
  for (int i = 0; i < rounds && rd_kafka_outq_len(rk_.get()) > 0; ++i) rd_kafka_poll(rk_.get(), wait_ms);
}

void kafka_processed_sink::on_delivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
  auto* call = static_cast<call_state*>(m->_private);
  if (m->err) {
    int none = RD_KAFKA_RESP_ERR_NO_ERROR;
    call->first_error.compare_exchange_strong(none, m->err);
  } else {
    ++static_cast<kafka_processed_sink*>(opaque)->stats_.sent;
  }
  call->release();
}

result<void> kafka_processed_sink::send(std::span<const message> stored) {
  if (stored.empty()) return {};
  // The call's own bound, or stop_waiting_at's deadline when that comes
  // first (it may be set while the call waits).
  const auto bound = clock::now() + options_.delivery_timeout + std::chrono::seconds(1);
  const auto deadline = [&] { return std::min(bound, give_up_.get()); };
  if (clock::now() >= deadline())
    return error(errc::shutting_down, fmt::format("the stop deadline passed; not sending to {}", options_.processed_topic));
  std::unique_ptr<call_state, decltype([](call_state* c) { c->release(); })> call(new call_state);

  // librdkafka copies each value, so one buffer serves the whole call.
  std::string value;
  for (const message& m : stored) {
    encode_envelope_into(value, m, event_message_processed, true);
    call->refs.fetch_add(1, std::memory_order_relaxed);
    // A full local queue drains as the broker acknowledges: wait, bounded.
    for (;;) {
      const auto err = rd_kafka_producev(
          rk_.get(), RD_KAFKA_V_TOPIC(options_.processed_topic.c_str()),
          RD_KAFKA_V_KEY(m.user_id.data(), m.user_id.size()), RD_KAFKA_V_VALUE(value.data(), value.size()),
          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(call.get()), RD_KAFKA_V_END);
      if (!err) break;
      if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || clock::now() >= deadline()) {
        call->refs.fetch_sub(1, std::memory_order_relaxed);  // the record was not taken
        return error(errc::unavailable,
                     fmt::format("producing to {}: {}", options_.processed_topic, rd_kafka_err2str(err)));
      }
      rd_kafka_flush(rk_.get(), 10);
    }
  }

  // flush() sends what is queued without waiting out the linger, and serves
  // the delivery reports meanwhile. It returns once every record of the
  // handle is acknowledged, so with calls from other threads in flight it
  // is kept short: this call looks at its own records every 5 ms at least.
  while (call->pending() > 0) {
    // Rounded up: a call must not give up before its deadline.
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline() - clock::now());
    if (left.count() <= 0) {
      return error(errc::unavailable, fmt::format("{} of {} records to {} not acknowledged in time",
                                                  call->pending(), stored.size(), options_.processed_topic));
    }
    rd_kafka_flush(rk_.get(), std::min(to_ms(left), 5));
  }
  if (const int err = call->first_error.load()) {
    return error(errc::unavailable,
                 fmt::format("delivery to {} failed: {}", options_.processed_topic,
                             rd_kafka_err2str(static_cast<rd_kafka_resp_err_t>(err))));
  }
  return {};
}

}  // namespace feed
