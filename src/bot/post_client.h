// The posting side of one I/O thread: an open-loop pacer for this thread's
// lane of the schedule (messages i with i % lanes == lane), a bounded queue
// of due messages, and a pool of keep-alive HTTP/1.1 connections.
//
// A message is handed to an idle connection the moment it is due; if none
// is idle it waits in the queue (full queue: "dropped by client"). A 503 is
// retried after its Retry-After, up to --max-retries times. Latency runs
// from the due time to the final answer, so queueing in the client counts.
//
// Thread-safety: every member function must run on the owning io_context's
// thread (the worker posts them there). Lifetime: must outlive all
// coroutines it spawned; the worker runs the io_context dry before
// destroying it.
#pragma once

#include <cstdint>
#include <deque>
#include <list>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "bot/histogram.h"
#include "bot/run_context.h"
#include "bot/worker_stats.h"

namespace feed::bot {

class post_client {
 public:
  post_client(run_context& ctx, boost::asio::io_context& ioc, worker_stats& stats, histogram& latency,
              unsigned lane, unsigned lanes, unsigned connections);
  ~post_client();
  post_client(const post_client&) = delete;
  post_client& operator=(const post_client&) = delete;

  void open();      // connect the pool (before the schedule starts)
  void start();     // begin pacing from ctx.start()
  void stop();      // stop pacing; cancel queued messages and pending retries
  void shutdown();  // stop(), then close every socket and timer

 private:
  struct job {
    std::uint64_t index;
    unsigned attempt;
    clock::time_point due;
  };
  struct connection;

  boost::asio::awaitable<void> pace();
  boost::asio::awaitable<void> run_connection(connection& c);
  boost::asio::awaitable<bool> exchange(connection& c, const job& j);
  boost::asio::awaitable<void> retry_later(job j, clock::duration delay);
  boost::asio::awaitable<void> watchdog();
  void submit(const job& j, bool priority);
  void finish(const job& j, int status, bool transport_error, clock::time_point now);
  void check_done();

  run_context& ctx_;
  boost::asio::io_context& ioc_;
  worker_stats& stats_;
  histogram& latency_;
  const unsigned lane_;
  const unsigned lanes_;
  const std::size_t queue_limit_;
  const bool log_each_;  // low rates: one log line per message

  std::vector<std::unique_ptr<connection>> conns_;
  std::vector<connection*> idle_;
  std::deque<job> queue_;
  std::list<boost::asio::steady_timer> retry_timers_;
  boost::asio::steady_timer pace_timer_;
  boost::asio::steady_timer watchdog_timer_;
  std::uint64_t pending_retries_ = 0;
  std::uint64_t in_flight_ = 0;
  std::uint64_t logged_failures_ = 0;
  bool started_ = false;
  bool pacing_done_ = false;
  bool stopped_ = false;
  bool shut_ = false;
  bool reported_done_ = false;
  std::string body_scratch_;
  std::string content_scratch_;
};

}  // namespace feed::bot
