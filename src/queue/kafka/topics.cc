#include "queue/kafka/topics.h"

#include <mutex>
#include <thread>

#include <fmt/format.h>

#include "base/log.h"
#include "queue/kafka/rdkafka_handle.h"

namespace feed {

namespace {

struct topic_spec {
  std::string name;
  int partitions;
};

struct new_topic_deleter {
  void operator()(rd_kafka_NewTopic_t* t) const noexcept { rd_kafka_NewTopic_destroy(t); }
};
struct admin_options_deleter {
  void operator()(rd_kafka_AdminOptions_t* o) const noexcept { rd_kafka_AdminOptions_destroy(o); }
};

result<void> create(rd_kafka_t* rk, const std::vector<topic_spec>& specs, const kafka_options& options) {
  std::vector<std::unique_ptr<rd_kafka_NewTopic_t, new_topic_deleter>> owned;
  std::vector<rd_kafka_NewTopic_t*> topics;
  char why[512];
  for (const auto& s : specs) {
    rd_kafka_NewTopic_t* t =
        rd_kafka_NewTopic_new(s.name.c_str(), s.partitions, options.replication_factor, why, sizeof why);
    if (!t) return error(errc::invalid_input, fmt::format("topic {}: {}", s.name, why));
    owned.emplace_back(t);
    topics.push_back(t);
  }

  std::unique_ptr<rd_kafka_AdminOptions_t, admin_options_deleter> admin(
      rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS));
  rd_kafka_AdminOptions_set_request_timeout(admin.get(), to_ms(options.admin_timeout), why, sizeof why);
  rd_kafka_AdminOptions_set_operation_timeout(admin.get(), to_ms(options.admin_timeout), why, sizeof why);

  kafka_queue q(rd_kafka_queue_new(rk));
  rd_kafka_CreateTopics(rk, topics.data(), topics.size(), admin.get(), q.get());
  // The request times out on its own after admin_timeout; the extra second
  // covers the result's trip back through the queue.
  kafka_event ev(rd_kafka_queue_poll(q.get(), to_ms(options.admin_timeout) + 1000));
  if (!ev) return error(errc::timeout, "creating Kafka topics timed out");
  if (rd_kafka_event_error(ev.get()))
    return kafka_error(rd_kafka_event_error(ev.get()), "creating Kafka topics");

  const rd_kafka_CreateTopics_result_t* res = rd_kafka_event_CreateTopics_result(ev.get());
  size_t n = 0;
  const rd_kafka_topic_result_t** results = rd_kafka_CreateTopics_result_topics(res, &n);
  for (size_t i = 0; i < n; ++i) {
    const auto err = rd_kafka_topic_result_error(results[i]);
    const char* name = rd_kafka_topic_result_name(results[i]);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      spdlog::info("kafka: created topic {}", name);
    } else if (err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
      const char* msg = rd_kafka_topic_result_error_string(results[i]);
      return error(errc_for(err) == errc::timeout ? errc::timeout : errc::unavailable,
                   fmt::format("creating Kafka topic {}: {} ({})", name, msg ? msg : rd_kafka_err2str(err),
                               rd_kafka_err2name(err)));
    }
  }
  return {};
}

struct metadata_deleter {
  void operator()(const rd_kafka_metadata_t* m) const noexcept { rd_kafka_metadata_destroy(m); }
};

// Whether every named topic exists with a leader for each partition.
result<bool> all_led(rd_kafka_t* rk, const std::vector<topic_spec>& specs, std::chrono::milliseconds timeout) {
  const rd_kafka_metadata_t* raw = nullptr;
  const auto err = rd_kafka_metadata(rk, 1, nullptr, &raw, to_ms(timeout));
  if (err) return kafka_error(err, "Kafka metadata request");
  std::unique_ptr<const rd_kafka_metadata_t, metadata_deleter> md(raw);
  for (const auto& s : specs) {
    bool led = false;
    for (int i = 0; i < md->topic_cnt; ++i) {
      const auto& t = md->topics[i];
      if (s.name != t.topic) continue;
      led = !t.err && t.partition_cnt > 0;
      for (int p = 0; led && p < t.partition_cnt; ++p) led = !t.partitions[p].err && t.partitions[p].leader >= 0;
    }
    if (!led) return false;
  }
  return true;
}

// The admin handle's last connection error ("Connect to ipv4#... failed:
// Connection refused", "Failed to resolve ..."), which a timed-out request
// does not say: librdkafka only logs it.
struct broker_trouble {
  std::mutex mu;
  std::string last;  // GUARDED_BY(mu)

  // librdkafka reports a failed connect as a FAIL log line, from its
  // broker threads (its error callback needs polling, which nothing does
  // while the request waits).
  static void on_log(const rd_kafka_t* rk, int level, const char* facility, const char* buf) {
    log_kafka_line(rk, level, facility, buf);
    if (std::string_view(facility) != "FAIL") return;
    auto* self = static_cast<broker_trouble*>(rd_kafka_opaque(rk));
    std::lock_guard lock(self->mu);
    self->last = buf;
  }
  // `e` with the last connection error appended, if there was one.
  error explain(error e) {
    std::lock_guard lock(mu);
    if (!last.empty()) e.message += fmt::format("; the brokers' last error: {}", last);
    return e;
  }
};

}  // namespace

result<void> ensure_topics(const kafka_options& options) {
  std::vector<topic_spec> specs = {{options.events_topic, options.events_partitions},
                                   {options.processed_topic, options.processed_partitions}};
  if (!options.dead_letter_topic.empty()) specs.push_back({options.dead_letter_topic, 1});

  broker_trouble trouble;  // outlives the handle, whose callbacks use it
  auto rk = make_handle(RD_KAFKA_PRODUCER, options, "admin", {}, [&trouble](rd_kafka_conf_t* conf) {
    rd_kafka_conf_set_log_cb(conf, &broker_trouble::on_log);
    rd_kafka_conf_set_opaque(conf, &trouble);
  });
  if (!rk) return rk.err();
  if (auto r = create(rk->get(), specs, options); !r) return trouble.explain(r.err());

  const auto deadline = std::chrono::steady_clock::now() + options.admin_timeout;
  for (;;) {
    auto led = all_led(rk->get(), specs, options.ready_timeout);
    if (led && *led) return {};
    if (std::chrono::steady_clock::now() >= deadline) {
      return trouble.explain(error(errc::timeout, led ? fmt::format("Kafka topics have no leaders after {} ms",
                                                                    options.admin_timeout.count())
                                                      : led.err().message));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

result<std::vector<std::int32_t>> topic_partitions(rd_kafka_t* rk, const std::string& topic,
                                                   std::chrono::milliseconds timeout) {
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
  const rd_kafka_metadata_t* raw = nullptr;
  const auto err = rd_kafka_metadata(rk, 0, rkt, &raw, to_ms(timeout));
  rd_kafka_topic_destroy(rkt);
  if (err) return kafka_error(err, fmt::format("Kafka metadata for {}", topic));
  std::unique_ptr<const rd_kafka_metadata_t, metadata_deleter> md(raw);
  if (md->topic_cnt != 1) return error(errc::unavailable, fmt::format("Kafka topic {} not in metadata", topic));
  const auto& t = md->topics[0];
  if (t.err) return kafka_error(t.err, fmt::format("Kafka topic {}", topic));
  if (t.partition_cnt <= 0) return error(errc::unavailable, fmt::format("Kafka topic {} has no partitions", topic));
  std::vector<std::int32_t> ids;
  ids.reserve(t.partition_cnt);
  for (int p = 0; p < t.partition_cnt; ++p) ids.push_back(t.partitions[p].id);
  return ids;
}

result<std::vector<std::int32_t>> await_topic_partitions(rd_kafka_t* rk, const std::string& topic,
                                                         std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    auto parts = topic_partitions(rk, topic, std::max(left, std::chrono::milliseconds(1)));
    if (parts || left <= std::chrono::milliseconds(100)) return parts;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

}  // namespace feed
