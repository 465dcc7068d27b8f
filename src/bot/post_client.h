// The posting side of one I/O thread: an open-loop pacer for this thread's
// lane of the schedule (messages i with i % lanes == lane), a bounded queue
// of due messages, and a pool of keep-alive HTTP/1.1 connections spread
// over the feed-api instances (global connection i talks to instance
// i % instances).
//
// A message is handed to an idle connection the moment it is due, whatever
// its instance; if none is idle it waits in the queue (full queue: "dropped
// by client"). A connection whose instance refuses or does not answer a
// connect backs off (100 ms doubling to 2 s) and tries again; meanwhile the
// other instances' connections take the load.
//
// Failover: a post that fails in transport (reset, early close, timeout) or
// is answered 503 is retried with the same Idempotency-Key on another
// instance, preferring the next one in the list, up to --max-retries times;
// a 503 first waits for its Retry-After, a transport failure goes again at
// once the first time and after 100 ms doubling to 2 s the times after. Only when no other instance has an
// open connection in this thread may the retry go to the same instance.
// Latency runs from the due time to the final answer.
//
// Accounting: every message ends once as accepted (2xx), refused (4xx),
// 5xx (503 after the last retry: "unavailable"), other status, transport
// error, dropped or cancelled; and, when that end is not 2xx but some attempt
// may have been stored (the request went out and no answer came, or a 503
// said the outcome is unknown), also as "outcome unknown" in the ledger.
//
// Thread-safety: every member function must run on the owning io_context's
// thread (io_thread posts them there). Lifetime: must outlive all
// coroutines it spawned; io_thread runs the io_context dry before
// destroying it.
#pragma once

#include <cstdint>
#include <deque>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "bot/chunked_decoder.h"
#include "bot/histogram.h"
#include "bot/http_response.h"
#include "bot/run_context.h"
#include "bot/thread_stats.h"

namespace feed::bot {

class post_client {
 public:
  // first_connection: the global number of this thread's first connection.
  post_client(run_context& ctx, boost::asio::io_context& ioc, thread_stats& stats, histogram& latency,
              unsigned lane, unsigned lanes, unsigned connections, unsigned first_connection);
  ~post_client();
  post_client(const post_client&) = delete;
  post_client& operator=(const post_client&) = delete;

  void open();      // connect the pool (before the schedule starts)
  void start();     // begin pacing from ctx.start()
  void stop();      // stop pacing; cancel queued messages and pending retries
  void shutdown();  // stop(), then close every socket and timer

 private:
  static constexpr int kAnyInstance = -1;
  struct job {
    std::uint64_t index;
    unsigned attempt;
    clock::time_point due;
    int avoid = kAnyInstance;   // instance the last attempt failed on
    bool maybe_stored = false;  // some attempt may have been stored
    bool resent_stale = false;  // already sent again once for a stale connection
    // Why this attempt is a retry, counted when it is sent: one cancelled
    // while it waited (a stop, the drain deadline) was never made.
    enum class retry : std::uint8_t { none, after_503, after_transport } retry_of = retry::none;
  };
  // What one request/response exchange came to.
  struct attempt {
    boost::system::error_code ec;
    response_head head;
    clock::time_point sent_at;
    std::size_t written = 0;
    std::size_t consumed = 0;
    bool ok = false;  // a complete response was read
    bool got_bytes = false;
    bool reused = false;
    bool timed_out = false;
  };
  struct connection;
  // Where reading one response has got to.
  struct read_state {
    bool have_head = false;
    chunked_decoder chunks;
    std::size_t body_pos = 0;
  };
  enum class read_step { more, done };

  boost::asio::awaitable<void> pace();
  boost::asio::awaitable<void> watchdog();
  boost::asio::awaitable<void> run_connection(connection& c);
  boost::asio::awaitable<bool> connect(connection& c);
  boost::asio::awaitable<void> idle_wait(connection& c);
  boost::asio::awaitable<void> serve(connection& c, const job& j);
  boost::asio::awaitable<void> exchange(connection& c, attempt& a);
  boost::asio::awaitable<void> read_response(connection& c, attempt& a);
  read_step parse_buffered(connection& c, attempt& a, read_state& st);
  static read_step complete(attempt& a, std::size_t consumed);
  static read_step fail_read(attempt& a, boost::system::error_code ec);
  static void keep_body(connection& c, const attempt& a, std::string_view piece);
  boost::asio::awaitable<void> retry_later(job j, clock::duration delay);

  void build_request(connection& c, const job& j);
  void begin_attempt(connection& c, const job& j, attempt& a);
  void end_attempt(connection& c);
  // Decides what follows an attempt; returns whether the connection stays open.
  bool settle(connection& c, const job& j, attempt& a);
  bool settle_transport_failure(connection& c, const job& j, const attempt& a, clock::time_point now);
  void settle_answer(connection& c, const job& j, const attempt& a, clock::time_point now);
  void on_connect_failed(connection& c, const boost::system::error_code& ec);
  void close_connection(connection& c);

  void spawn(boost::asio::awaitable<void> work, const char* what);
  void submit(const job& j);  // a newly due message
  // `freshest`: wake the connection idle the shortest, not the longest.
  void enqueue(const job& j, bool front, bool freshest = false);
  std::optional<job> take_job(const connection& c);
  bool can_take(const connection& c, const job& j) const;
  bool other_instance_live(std::size_t instance) const;
  void wake_idle_for(const job& j, bool freshest = false);
  void wake_all_idle();
  bool waiting_work() const noexcept { return queued_ > 0; }
  bool feeding_availability() const noexcept { return started_ && !reported_done_; }

  void finish(const job& j, int status, bool transport_error, clock::time_point now);
  void abandon(const job& j);  // cancelled before a final answer
  void settle_ledger(const job& j, bool accepted);
  void check_done();

  run_context& ctx_;
  boost::asio::io_context& ioc_;
  thread_stats& stats_;
  histogram& latency_;
  const unsigned lane_;
  const unsigned lanes_;
  const std::size_t queue_limit_;
  const bool log_each_;  // low rates: one log line per message

  std::vector<std::unique_ptr<connection>> conns_;
  std::vector<connection*> idle_;
  std::deque<job> queue_;                  // due, any instance (bounded by queue_limit_)
  std::vector<std::deque<job>> retry_q_;   // by the instance they failed on
  std::vector<unsigned> live_;             // open connections per instance
  std::uint64_t queued_ = 0;               // jobs in queue_ and retry_q_
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
