#include "queue/kafka/rdkafka_handle.h"

#include <algorithm>
#include <chrono>
#include <thread>

#include <fmt/format.h>

#include "base/log.h"

namespace feed {

void rd_kafka_deleter::operator()(rd_kafka_t* rk) const noexcept {
  // Consumers are closed explicitly beforehand with a bound; a second,
  // unbounded close inside destroy could hang on an unreachable broker.
  rd_kafka_destroy_flags(rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
}

void log_kafka_line(const rd_kafka_t* rk, int level, const char* facility, const char* buf) {
  // librdkafka uses syslog levels. A failed connection (FAIL) is logged as
  // an error and repeats every reconnect while a broker is down; the
  // failed deliveries and readiness checks are the errors that matter.
  if (std::string_view(facility) == "FAIL" && level <= 4) level = 4;
  const auto lvl = level <= 3 ? spdlog::level::err
                   : level == 4 ? spdlog::level::warn
                   : level <= 6 ? spdlog::level::info
                                : spdlog::level::debug;
  spdlog::log(lvl, "kafka {} {}: {}", rd_kafka_name(rk), facility, buf);
}

namespace {

void on_error(rd_kafka_t* rk, int err, const char* reason, void*) {
  const auto code = static_cast<rd_kafka_resp_err_t>(err);
  // Connection churn repeats what the FAIL log line already said.
  const bool routine = code == RD_KAFKA_RESP_ERR__TRANSPORT || code == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN ||
                       code == RD_KAFKA_RESP_ERR__RESOLVE;
  spdlog::log(routine ? spdlog::level::debug : spdlog::level::warn, "kafka {}: {} ({})", rd_kafka_name(rk),
              reason, rd_kafka_err2name(code));
  if (code == RD_KAFKA_RESP_ERR__FATAL) {
    char why[512];
    const auto fatal = rd_kafka_fatal_error(rk, why, sizeof why);
    spdlog::error("kafka {}: fatal error {}: {}", rd_kafka_name(rk), rd_kafka_err2name(fatal), why);
  }
}

result<void> set(rd_kafka_conf_t* conf, const std::string& name, const std::string& value) {
  char why[512];
  if (rd_kafka_conf_set(conf, name.c_str(), value.c_str(), why, sizeof why) != RD_KAFKA_CONF_OK)
    return error(errc::invalid_input, fmt::format("kafka property {}={}: {}", name, value, why));
  return {};
}

}  // namespace

result<kafka_handle> make_handle(rd_kafka_type_t type, const kafka_options& options, std::string_view role,
                                 const kafka_properties& properties,
                                 const std::function<void(rd_kafka_conf_t*)>& setup) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  const kafka_properties shared = {
      {"bootstrap.servers", options.brokers},
      {"client.id", fmt::format("{}-{}", options.client_id, role)},
      // librdkafka wants it a second above the consumers' fetch.wait.max.ms.
      {"socket.timeout.ms", std::to_string(std::max(to_ms(options.request_timeout), 1500))},
      // Brokers close idle connections routinely; that is not news.
      {"log.connection.close", "false"},
      {"socket.keepalive.enable", "true"},
      // Reconnect quickly after a broker restart, without hammering it.
      {"reconnect.backoff.ms", "100"},
      {"reconnect.backoff.max.ms", "2000"},
      // A connect that the network drops silently is given up after this
      // (librdkafka's default is 30 s): after a partition heals, the next
      // attempt is then seconds away, not up to half a minute.
      {"socket.connection.setup.timeout.ms", std::to_string(std::max(to_ms(options.request_timeout), 1000))},
      // IPv4 only: brokers are addressed as 127.0.0.1 or by name in compose.
      {"broker.address.family", "v4"},
  };
  for (const auto* list : {&shared, &properties, &options.extra_config}) {
    for (const auto& [name, value] : *list) {
      if (auto r = set(conf, name, value); !r) {
        rd_kafka_conf_destroy(conf);
        return r.err();
      }
    }
  }
  rd_kafka_conf_set_log_cb(conf, log_kafka_line);
  rd_kafka_conf_set_error_cb(conf, on_error);
  if (setup) setup(conf);

  char why[512];
  // rd_kafka_new takes ownership of conf only on success.
  rd_kafka_t* rk = rd_kafka_new(type, conf, why, sizeof why);
  if (!rk) {
    rd_kafka_conf_destroy(conf);
    return error(errc::invalid_input, fmt::format("kafka {} client: {}", role, why));
  }
  return kafka_handle(rk);
}

kafka_properties reliable_producer_properties(const kafka_options& options, std::chrono::milliseconds linger,
                                              bool one_in_flight) {
  kafka_properties p = {
      // Idempotence implies acks=all and bounded in-flight requests, so a
      // retried batch is neither duplicated nor reordered in its partition.
      {"enable.idempotence", "true"},
      {"acks", "all"},
      {"linger.ms", std::to_string(linger.count())},
      {"batch.num.messages", std::to_string(options.batch_messages)},
      {"queue.buffering.max.messages", std::to_string(options.queue_max_messages)},
      {"message.timeout.ms", std::to_string(std::max(to_ms(options.delivery_timeout), to_ms(linger) + 1))},
      {"request.timeout.ms", std::to_string(to_ms(options.request_timeout))},
      // The Java client's partitioner, so a key lands where other clients
      // writing the same topics would put it.
      {"partitioner", "murmur2_random"},
  };
  if (one_in_flight) {
    // The idempotent producer holds a partition's next request back while
    // 5 or more of its messages are in flight (librdkafka counts messages,
    // not requests, against its window of 5), so under load a partition has
    // one request out anyway. But a batch that falls due meanwhile (its
    // linger over) sets the broker thread's wake-up to "now", and the
    // thread polls with a zero timeout until the acknowledgement comes:
    // 3.3 polls per post measured at 20,000 posts/s, ~4 us of the 35 us of
    // CPU per post, and CPU taken from the broker on a small machine. With
    // the connection's one slot taken no wake-up is set, and the thread
    // sleeps until the response. The cost is that partitions led by the
    // same broker take turns.
    p.emplace_back("max.in.flight.requests.per.connection", "1");
  }
  return p;
}

namespace {

// Whether the consumer still holds partitions: a close's revoke not yet
// acknowledged.
bool holds_partitions(rd_kafka_t* rk) {
  rd_kafka_topic_partition_list_t* parts = nullptr;
  if (rd_kafka_assignment(rk, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR || !parts) return false;
  const bool any = parts->cnt > 0;
  rd_kafka_topic_partition_list_destroy(parts);
  return any;
}

}  // namespace

bool close_consumer(rd_kafka_t* rk, std::chrono::milliseconds bound, bool joined) {
  // A close, once begun, must be served until its revoke is acknowledged:
  // destroyed before that, the handle never finishes (librdkafka's main
  // thread spins waiting for the application, measured: 7 destroys of 10
  // hung). With no time left the close is not begun; the handle is then
  // destroyed without one, and the group reassigns its partitions after the
  // session timeout instead of at once.
  if (bound.count() <= 0) {
    spdlog::warn("kafka {}: no time left to leave the group; it reassigns the partitions after its session timeout",
                 rd_kafka_name(rk));
    return false;
  }
  // A consumer that never joined (a rebalance held up by a member that
  // died) holds no partitions, and its leave would queue behind its join:
  // the destroy then waited for the leave's request timeout, 5 s past the
  // stop's bound, spinning a core. A member with no partitions (more
  // instances than partitions, or one stopped in the middle of a rebalance
  // after its revoke) must leave all the same: left in the group, it held
  // up the next member's join, and every partition of every other member
  // with it, until its session timed out. If a dead member holds that
  // rebalance up, the leave waits behind it, and the stop overruns its
  // bound by up to the request timeout.
  if (!holds_partitions(rk) && !joined) {
    spdlog::info("kafka {}: still joining its group, holding no partitions; destroyed without leaving it",
                 rd_kafka_name(rk));
    return false;
  }
  kafka_queue q(rd_kafka_queue_new(rk));
  if (rd_kafka_error_t* e = rd_kafka_consumer_close_queue(rk, q.get())) {
    spdlog::warn("kafka {}: close: {}", rd_kafka_name(rk), rd_kafka_error_string(e));
    rd_kafka_error_destroy(e);
    return false;
  }
  using clock = std::chrono::steady_clock;
  const auto start = clock::now(), deadline = start + bound;
  // The revoke comes from this process, not the broker, within milliseconds,
  // so it is waited for past `bound` too, up to this.
  const auto revoke_deadline = start + std::max(bound, std::chrono::milliseconds(2000));
  while (!rd_kafka_consumer_closed(rk)) {
    const auto now = clock::now();
    auto until = deadline;
    if (now >= deadline) {
      if (!holds_partitions(rk) || now >= revoke_deadline) {
        spdlog::warn("kafka {}: consumer did not close within {} ms", rd_kafka_name(rk), bound.count());
        return false;
      }
      until = revoke_deadline;
    }
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(until - now);
    kafka_event ev(rd_kafka_queue_poll(q.get(), std::min(to_ms(left), 100)));
    if (!ev || rd_kafka_event_type(ev.get()) != RD_KAFKA_EVENT_REBALANCE) continue;
    // Closing revokes the assignment; acknowledge it so the close proceeds.
    if (std::string_view(rd_kafka_rebalance_protocol(rk)) == "COOPERATIVE") {
      if (rd_kafka_error_t* e = rd_kafka_incremental_unassign(rk, rd_kafka_event_topic_partition_list(ev.get())))
        rd_kafka_error_destroy(e);
    } else {
      rd_kafka_assign(rk, nullptr);
    }
  }
  return true;
}
errc errc_for(rd_kafka_resp_err_t err) noexcept {
  switch (err) {
    case RD_KAFKA_RESP_ERR_NO_ERROR: return errc::ok;
    case RD_KAFKA_RESP_ERR__QUEUE_FULL: return errc::queue_full;
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT: return errc::timeout;
    case RD_KAFKA_RESP_ERR__PURGE_QUEUE:
    case RD_KAFKA_RESP_ERR__PURGE_INFLIGHT:
    case RD_KAFKA_RESP_ERR__DESTROY: return errc::shutting_down;
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_MSG: return errc::invalid_input;
    default: return errc::unavailable;
  }
}

error kafka_error(rd_kafka_resp_err_t err, std::string_view what) {
  return error(errc_for(err), fmt::format("{}: {} ({})", what, rd_kafka_err2str(err), rd_kafka_err2name(err)));
}

}  // namespace feed
