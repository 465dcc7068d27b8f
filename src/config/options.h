// Everything feed-api can be told, in one struct, filled from flags and
// environment variables (flags win). Defaults run the embedded mode.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "broadcast/broadcaster.h"
#include "http/handlers/services.h"
#include "http/server.h"
#include "queue/kafka/kafka_options.h"
#include "worker/worker.h"

namespace feed {

struct app_options {
  http::server_options server;
  http::api_options api;
  broadcaster_options fanout;
  worker_options worker;

  std::size_t threads = 1;                      // event loops serving HTTP and SSE
  std::size_t blocking_threads = 2;             // threads for store reads
  std::filesystem::path data_dir = "data";      // embedded store location
  std::string sqlite_synchronous = "FULL";      // FULL: survives power loss; NORMAL: process crash only
  std::size_t queue_capacity = 10000;           // in-process queue bound; with Kafka, the producers' local queue
  std::string kafka_brokers;                    // host:port[,...]; empty = embedded queue
  std::string database_url;                     // postgresql://...; empty = embedded store
  std::size_t db_pool_size = 4;                 // connections to the database, at most
  // Topics, group, batching. Brokers, partitions of the processed topic,
  // the producers' queue bound and delivery bounds come from the fields
  // here instead (kafka_brokers, events_partitions, queue_capacity,
  // api.publish_timeout, processed_delivery_timeout).
  kafka_options kafka;
  // How long the worker's processed events may wait for Kafka's
  // acknowledgement, at least api.publish_timeout (which bounds a post's own
  // record: one the API gave up on should not be delivered much later). A
  // processed event that fails only makes the worker retry, so it may wait
  // longer under load.
  std::chrono::milliseconds processed_delivery_timeout{10000};
  std::string log_level = "info";
  std::chrono::seconds shutdown_timeout{10};    // bound on a graceful stop
  // Flags (or their variables) given for a backend this configuration does
  // not run, each with why, to be logged once logging is set up: a
  // --kafka-instance-id without --kafka-brokers used to pass unnoticed.
  std::vector<std::string> unused_flags;
};

// Parses argv and the environment. On --help or a bad value prints to
// stdout/stderr and returns the exit code to use in `exit_code`.
result<app_options> parse_options(int argc, char** argv, int& exit_code);

}  // namespace feed
