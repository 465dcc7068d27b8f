// What the endpoint handlers need: the backends and the API's limits.
// Owned by the application; outlives the server. Handlers only read it.
#pragma once

#include <chrono>

#include <boost/asio/thread_pool.hpp>

#include "broadcast/broadcaster.h"
#include "metrics/metrics.h"
#include "model/inflight_keys.h"
#include "model/post_request.h"
#include "queue/queue.h"
#include "store/store.h"

namespace feed::http {

struct api_options {
  post_limits limits;                                // content and user_id limits
  std::chrono::milliseconds publish_timeout{1000};   // longest wait for the queue before 503
  // Longest wait for a store read (a list page, a stream's starting point)
  // before 503: a database that hangs must not hold the requests, nor pile
  // them up on the blocking pool.
  std::chrono::milliseconds store_wait{5000};
  int retry_after_seconds = 1;                       // Retry-After on 503
  std::size_t history_default = 100;                 // events sent on connect without ?history=
  std::size_t history_page = 1000;                   // rows per store read when replaying
  std::size_t list_default = 50;                     // GET /api/messages default ?limit=
  std::size_t list_max = 200;                        // ... and its maximum
};

struct services {
  queue_writer& queue;
  store& db;
  broadcaster& fanout;
  boost::asio::thread_pool& blocking;  // store calls run here, never on an event loop
  api_options opts;
  const metrics& registry;             // rendered by GET /metrics
  // Keyed posts in flight or accepted and not yet stored; what the store
  // hands the feed ends their entries (application::start_fanout).
  inflight_keys& keys;
};

}  // namespace feed::http
