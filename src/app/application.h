// feed-api's wiring: builds the components in dependency order, runs the
// event loops, and on SIGINT/SIGTERM stops them in reverse order within
// shutdown_timeout:
//   1. stop accepting; close idle keep-alive connections
//   2. wait for in-flight requests (their posts still get committed)
//   3. close the queue; the worker drains it into the store
//   4. end every SSE stream (pending events are flushed first)
//   5. stop the loops; close the store
//   6. destroy what the loops still hold (a request stalled past the
//      deadline), while everything it refers to still exists
// Nothing that was answered 202 is lost: the 202 is sent only after commit.
//
// Lifecycle: start() starts the parts one by one and pushes each part's
// stop action on a stop_stack the moment the part has started. run() waits
// for the signal and pops the stack, so stops run in reverse start order;
// a start() that fails half-way leaves the stack to the destructor, which
// stops just what had started, in the same order. The members are then
// destroyed in reverse declaration order, the loops last: the parts' sockets
// and timers need their io_context until they are gone. The port is taken
// before anything is created or migrated, so a busy port leaves no data
// directory or schema behind.
//
// Threads: start(), run() and the destructor belong to one thread (main's).
// The parts run on the event loops, the blocking pool, the worker's and the
// Kafka clients' own threads; every one of them has stopped when run()
// returns.
#pragma once

#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/thread_pool.hpp>

#include "app/backends.h"
#include "app/report_pump.h"
#include "app/stop_stack.h"
#include "broadcast/broadcaster.h"
#include "config/options.h"
#include "http/handlers/services.h"
#include "http/router.h"
#include "http/server.h"
#include "model/inflight_keys.h"
#include "metrics/metrics.h"
#include "worker/worker.h"

namespace feed {

class application {
 public:
  explicit application(app_options opts);
  // Stops whatever is still running (after a failed start()).
  ~application();
  application(const application&) = delete;
  application& operator=(const application&) = delete;

  // Starts every part and serves. The error is the line to log ("cannot
  // start: ...", "cannot read the store: ..."); what had started is stopped
  // by the destructor.
  result<void> start();
  // After a successful start(): blocks until SIGINT or SIGTERM, then stops
  // everything within shutdown_timeout. Returns the exit code.
  int run();

  // After a successful start(): the port it listens on (for --port 0).
  std::uint16_t port() const;

 private:
  using work_guard = boost::asio::executor_work_guard<boost::asio::io_context::executor_type>;

  // An io_context whose pending handlers can be destroyed before it is.
  // Stopped at the deadline, a loop still holds the suspended coroutines of
  // requests and streams that had not ended, and their destructors may
  // refer to the parts they were served by (the server, the handlers, the
  // hubs). shutdown() destroys them while every part exists; the io_context
  // itself has to outlive the parts' sockets and timers, so it goes last.
  class event_loop : public boost::asio::io_context {
   public:
    using io_context::io_context;
    using execution_context::shutdown;
  };

  // start()'s steps, in order.
  result<void> start_runtime();
  result<void> listen();
  result<void> open_backends();
  result<void> start_fanout();
  result<void> start_worker();
  result<void> serve();

  // Stop actions that take more than one call.
  void stop_serving();
  void close_hubs();
  void stop_worker();
  void stop_loops();
  void end_pending();
  bool loops_running() const { return !threads_.empty(); }

  const app_options opts_;
  // Set when stopping begins; every stop action is bounded by it.
  std::chrono::steady_clock::time_point deadline_{};
  seq_t stored_head_{0};  // the store's highest seq at start-up

  // Declared in start order: destroyed in reverse, after stops_ has run.
  std::vector<std::unique_ptr<event_loop>> contexts_;
  std::vector<boost::asio::io_context*> loops_;
  std::unique_ptr<boost::asio::thread_pool> blocking_;  // store reads; posts back to the loops
  http::router routes_;
  std::unique_ptr<http::server> server_;
  // Posts with an Idempotency-Key not yet seen stored; before the backends,
  // whose late delivery reports may still release entries.
  inflight_keys keys_{1 << 16};
  std::unique_ptr<backends> backends_;
  std::unique_ptr<report_pump> reports_;  // Kafka mode
  std::unique_ptr<broadcaster> fanout_;
  std::unique_ptr<worker> worker_;
  metrics registry_;
  std::optional<http::services> services_;
  std::promise<int> stop_signal_;
  std::unique_ptr<boost::asio::signal_set> signals_;
  std::vector<work_guard> guards_;
  std::vector<std::thread> threads_;  // one per loop, from serve() on

  stop_stack stops_;
};

// Runs feed-api until a stop signal; returns the process exit code.
int run_application(const app_options& opts);

}  // namespace feed
