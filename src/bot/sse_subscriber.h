// One SSE connection to the feed: connects, reads the event stream and
// accounts every event of this run (delivery tally, end-to-end latency).
// On a dropped stream it reconnects with Last-Event-ID so a server that
// supports resumption can fill the gap; anything lost still shows as missing.
//
// Thread-safety: all calls on the owning io_context's thread. The owner
// keeps the object alive until its run() coroutine has returned (the worker
// runs its io_context dry), then reads tally() for the final report.
#pragma once

#include <array>
#include <cstdint>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "bot/chunked_decoder.h"
#include "bot/delivery_tally.h"
#include "bot/histogram.h"
#include "bot/run_context.h"
#include "bot/sse_parser.h"
#include "bot/worker_stats.h"

namespace feed::bot {

// Limits how many subscribers of one thread are connecting at once, so that
// opening thousands of streams does not overflow the server's accept queue.
struct connect_gate {
  unsigned active = 0;
  unsigned limit = 256;
};

class sse_subscriber {
 public:
  sse_subscriber(run_context& ctx, boost::asio::io_context& ioc, worker_stats& stats, histogram& e2e,
                 connect_gate& gate);
  sse_subscriber(const sse_subscriber&) = delete;
  sse_subscriber& operator=(const sse_subscriber&) = delete;

  boost::asio::awaitable<void> run();
  void close();

  bool ever_connected() const noexcept { return ever_connected_; }
  const delivery_tally& tally() const noexcept { return tally_; }

 private:
  // Opens the stream; true once a 200 head has been read (leftover body
  // bytes are left at buf_[0..body_bytes_)).
  boost::asio::awaitable<bool> open_stream();
  void on_bytes(std::string_view bytes, clock::time_point now);
  void on_event(const sse_event& ev, clock::time_point now);

  run_context& ctx_;
  worker_stats& stats_;
  histogram& e2e_;
  connect_gate& gate_;
  boost::asio::ip::tcp::socket sock_;
  boost::asio::steady_timer timer_;
  sse_parser parser_;
  chunked_decoder chunks_;
  delivery_tally tally_;
  std::size_t body_bytes_ = 0;
  std::uint64_t comments_seen_ = 0;
  bool chunked_ = false;
  bool ever_connected_ = false;
  bool closed_ = false;
  std::array<char, 4096> buf_;
};

}  // namespace feed::bot
