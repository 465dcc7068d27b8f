// One SSE connection to the feed: connects, reads the event stream and
// accounts every event of this run (delivery tally, end-to-end latency).
//
// Failover: subscriber j starts on instance j % instances. When its stream
// ends, errs, stays silent past --stream-timeout, or a connect or head takes
// longer than --dial-timeout, it reopens the stream on the next instance in
// the list with Last-Event-ID = the last seq it received (seq is global, so
// any instance can resume it), or, before its first event, the feed's
// newest seq from before posting began (run_context::resume_floor). The
// first reopen after a stream that lasted a while is immediate; failures in
// a row back off from 100 ms to 2 s.
//
// Per subscriber it counts reopened streams and how long each disconnect
// lasted, from the moment the stream was lost to the next 200 stream head.
//
// Thread-safety: all calls on the owning io_context's thread. The owner
// keeps the object alive until its run() coroutine has returned (io_thread
// runs its io_context dry), then reads tally() and the figures for the final
// report.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "bot/chunked_decoder.h"
#include "bot/delivery_tally.h"
#include "bot/histogram.h"
#include "bot/outage_tracker.h"
#include "bot/run_context.h"
#include "bot/sse_parser.h"
#include "bot/thread_stats.h"

namespace feed::bot {

// Limits how many subscribers of one thread are connecting at once, so that
// opening thousands of streams does not overflow the server's accept queue.
struct connect_gate {
  unsigned active = 0;
  unsigned limit = 256;
};

class sse_subscriber {
 public:
  sse_subscriber(run_context& ctx, boost::asio::io_context& ioc, thread_stats& stats, histogram& e2e,
                 connect_gate& gate, std::size_t first_instance);
  sse_subscriber(const sse_subscriber&) = delete;
  sse_subscriber& operator=(const sse_subscriber&) = delete;

  boost::asio::awaitable<void> run();
  // Stops for good; a disconnect still open counts until now.
  void close();
  // Closes a connect or stream that is past its deadline (run() then moves on).
  void check_deadlines(clock::time_point now);

  bool ever_connected() const noexcept { return ever_connected_; }
  const delivery_tally& tally() const noexcept { return tally_; }
  std::uint64_t reconnects() const noexcept { return reconnects_; }
  double longest_gap_s() const noexcept { return gaps_.longest_s(); }
  // Instance of the last stream opened, if any.
  std::optional<std::size_t> last_instance() const noexcept { return last_instance_; }

 private:
  // Opens the stream; true once a 200 head has been read (leftover body
  // bytes are left at buf_[0..body_bytes_)).
  boost::asio::awaitable<bool> open_stream();
  boost::asio::awaitable<bool> dial();
  boost::asio::awaitable<bool> read_head();
  boost::asio::awaitable<void> stream();
  boost::asio::awaitable<void> pause_before_retry(bool was_streaming, clock::time_point opened_at);
  std::string request() const;
  void on_open(clock::time_point now);
  void on_lost(clock::time_point now);
  void on_bytes(std::string_view bytes, clock::time_point now);
  void on_event(const sse_event& ev, clock::time_point now);
  void on_own_event(std::uint64_t token, const sse_event& ev, clock::time_point now);

  run_context& ctx_;
  thread_stats& stats_;
  histogram& e2e_;
  connect_gate& gate_;
  boost::asio::ip::tcp::socket sock_;
  boost::asio::steady_timer timer_;
  sse_parser parser_;
  chunked_decoder chunks_;
  delivery_tally tally_;
  outage_tracker gaps_;
  std::size_t instance_;
  std::optional<std::size_t> last_instance_;
  std::size_t body_bytes_ = 0;
  std::uint64_t comments_seen_ = 0;
  std::uint64_t reconnects_ = 0;
  clock::duration backoff_{0};
  clock::time_point dial_started_;
  clock::time_point last_byte_;
  bool dialing_ = false;
  bool streaming_ = false;
  bool chunked_ = false;
  bool ever_connected_ = false;
  bool closed_ = false;
  std::array<char, 4096> buf_;
};

}  // namespace feed::bot
