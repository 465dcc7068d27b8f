// Owning librdkafka handles and the configuration every handle shares.
//
// make_handle() builds a producer or consumer from kafka_options plus the
// caller's properties, routes librdkafka's log lines and client errors to
// spdlog, and reports a bad property as errc::invalid_input naming it.
//
// Thread safety: librdkafka handles are thread-safe; these helpers hold no
// state of their own. Log and error callbacks run on librdkafka's threads or
// whichever thread polls the handle.
#pragma once

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <librdkafka/rdkafka.h>

#include "base/result.h"
#include "queue/kafka/kafka_options.h"

namespace feed {

struct rd_kafka_deleter {
  void operator()(rd_kafka_t* rk) const noexcept;
};
struct rd_kafka_queue_deleter {
  void operator()(rd_kafka_queue_t* q) const noexcept { rd_kafka_queue_destroy(q); }
};
struct rd_kafka_topic_partition_list_deleter {
  void operator()(rd_kafka_topic_partition_list_t* l) const noexcept { rd_kafka_topic_partition_list_destroy(l); }
};
struct rd_kafka_event_deleter {
  void operator()(rd_kafka_event_t* e) const noexcept { rd_kafka_event_destroy(e); }
};
struct rd_kafka_message_deleter {
  void operator()(rd_kafka_message_t* m) const noexcept { rd_kafka_message_destroy(m); }
};

// Destroying a consumer handle does not leave its group; close it first
// (close_consumer) so the destroy never blocks on the network.
using kafka_handle = std::unique_ptr<rd_kafka_t, rd_kafka_deleter>;
using kafka_queue = std::unique_ptr<rd_kafka_queue_t, rd_kafka_queue_deleter>;
using kafka_partitions = std::unique_ptr<rd_kafka_topic_partition_list_t, rd_kafka_topic_partition_list_deleter>;
using kafka_event = std::unique_ptr<rd_kafka_event_t, rd_kafka_event_deleter>;
using kafka_message = std::unique_ptr<rd_kafka_message_t, rd_kafka_message_deleter>;

using kafka_properties = std::vector<std::pair<std::string, std::string>>;

// Applied after the shared properties and before options.extra_config.
// `setup` may install callbacks and the opaque on the configuration.
result<kafka_handle> make_handle(rd_kafka_type_t type, const kafka_options& options, std::string_view role,
                                 const kafka_properties& properties,
                                 const std::function<void(rd_kafka_conf_t*)>& setup = {});

// Properties of an idempotent, acks=all producer with the options' batching
// and delivery bound. `linger` is how long a record may wait to fill a
// batch. `one_in_flight` allows each broker connection one request at a
// time instead of five: right for a producer fed one record at a time
// faster than the broker answers (the .cc says why); one that hands over a
// batch and then flushes it wants its partitions' requests out together.
kafka_properties reliable_producer_properties(const kafka_options& options, std::chrono::milliseconds linger,
                                              bool one_in_flight);

// Leaves the consumer group (if any) within `bound`, serving the close's
// rebalance events; the handle may then be destroyed without blocking. The
// revoke is served even up to 2 s past `bound` (a close left before it
// hangs the destroy). No close is begun with `bound` 0, nor when the
// consumer holds no partitions and has not `joined` (been assigned by a
// rebalance, even no partition): it may be stuck joining. False when the
// close did not finish or was not begun (it is then logged).
bool close_consumer(rd_kafka_t* rk, std::chrono::milliseconds bound, bool joined = false);

// librdkafka's log callback of every handle: its lines, at our levels.
void log_kafka_line(const rd_kafka_t* rk, int level, const char* facility, const char* buf);

// Our error class for a librdkafka error: queue_full for a full local
// queue, timeout for timed-out requests and deliveries, shutting_down for
// records purged at stop, unavailable for everything else.
errc errc_for(rd_kafka_resp_err_t err) noexcept;

error kafka_error(rd_kafka_resp_err_t err, std::string_view what);

inline int to_ms(std::chrono::milliseconds d) {
  return static_cast<int>(std::clamp<std::chrono::milliseconds::rep>(d.count(), 0, 1 << 30));
}

}  // namespace feed
