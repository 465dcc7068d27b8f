// One I/O thread: an io_context, this thread's share of the posting
// connections and of the subscribers, and its counters and histograms.
//
// The controller (main thread) calls the public functions; each one posts
// its work onto this object's own thread, so nothing inside is locked.
// Counters and histograms may be read from any thread at any time (relaxed
// atomics). Subscribers' tallies may be read only after join().
#pragma once

#include <memory>
#include <thread>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/io_context.hpp>

#include "bot/histogram.h"
#include "bot/post_client.h"
#include "bot/run_context.h"
#include "bot/sse_subscriber.h"
#include "bot/thread_stats.h"

namespace feed::bot {

class io_thread {
 public:
  // lane/lanes: this thread's share of the schedule; connections: its share
  // of --concurrency, the first of them being global connection number
  // first_connection (connection i talks to instance i % instances).
  io_thread(run_context& ctx, unsigned lane, unsigned lanes, unsigned connections, unsigned first_connection);
  ~io_thread();
  io_thread(const io_thread&) = delete;
  io_thread& operator=(const io_thread&) = delete;

  void start_thread();
  // Opens subscribers first_subscriber .. first_subscriber + n - 1 (global
  // numbers: subscriber j starts on instance j % instances).
  void open_subscribers(unsigned n, unsigned first_subscriber);
  // Gives up on subscribers that never opened their stream.
  void drop_unready();
  void open_connections();
  void start_posting();
  void stop_posting();
  // Closes every socket; the thread then finishes once its coroutines have unwound.
  void shutdown();
  void join();

  const thread_stats& stats() const noexcept { return stats_; }
  const histogram& post_latency() const noexcept { return post_latency_; }
  const histogram& e2e_latency() const noexcept { return e2e_latency_; }
  const std::vector<std::unique_ptr<sse_subscriber>>& subscribers() const noexcept { return subscribers_; }

 private:
  // Enforces the subscribers' connect and silence deadlines.
  boost::asio::awaitable<void> watch_subscribers();

  // Declared first so it is destroyed last: sockets below must go before it.
  boost::asio::io_context ioc_{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_;
  run_context& ctx_;
  thread_stats stats_;
  histogram post_latency_;
  histogram e2e_latency_;
  connect_gate gate_;
  boost::asio::steady_timer sweep_timer_{ioc_};
  bool shut_ = false;
  post_client poster_;
  std::vector<std::unique_ptr<sse_subscriber>> subscribers_;
  std::thread thread_;
};

}  // namespace feed::bot
