// The HTTP server: one acceptor, connections spread round-robin over the
// event loops, one coroutine per connection (keep-alive, limits, timeouts).
//
// Lifecycle (two phases, see app/app.cc): stop_accepting() closes the
// acceptor; close_idle() closes keep-alive connections that are waiting for
// a request and makes busy ones close after their current response; the
// caller waits for in_flight() to reach zero, then close_all() cuts the rest.
// Every method may be called from any thread.
//
// Lifetime: the server must not be destroyed while its loops run. It may be
// destroyed before them, though: connections still open when the loops were
// stopped (a stalled request at the shutdown deadline) leave suspended
// coroutines that the io_contexts destroy, and what those frames touch as
// they unwind (the counts, the loops' stream sets) is shared with them.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory_resource>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>

#include "base/result.h"
#include "http/request_checks.h"
#include "http/router.h"

namespace feed::http {

struct server_options {
  std::string host = "127.0.0.1";                 // address to bind
  std::uint16_t port = 8090;                      // 0 picks a free port
  std::size_t max_connections = 10000;            // past it new connections get 503
  std::size_t max_body_bytes = 16 * 1024;         // larger bodies get 413
  std::size_t max_header_bytes = 8 * 1024;        // larger headers get 431
  std::chrono::seconds header_timeout{10};        // to receive a request's header and body
  std::chrono::seconds idle_timeout{60};          // keep-alive wait for the next request
};

class server {
 public:
  // `streams` counts connections handed off to streaming (SSE), which still
  // count against max_connections.
  server(const std::vector<boost::asio::io_context*>& loops, server_options opts, const router& routes,
         std::function<std::size_t()> streams = {});
  ~server();

  // Binds and listens; the error says why not (address in use, ...).
  result<void> listen();
  std::uint16_t port() const { return port_; }
  void start();

  void stop_accepting();
  void close_idle();
  void close_all();

  bool stopping() const { return stopping_; }
  std::size_t in_flight() const { return state_->in_flight; }
  std::size_t connections() const { return state_->connections; }
  // Responses sent, by status class (index 1..5 = 1xx..5xx).
  std::uint64_t responses(int status_class) const { return responses_[status_class].load(std::memory_order_relaxed); }

 private:
  using clock = std::chrono::steady_clock;
  using socket_type = boost::asio::ip::tcp::socket;
  // What the loop knows of one open connection. Its deadline is checked by
  // the loop's sweep (a few times a second) rather than by a timer per
  // socket operation: arming, cancelling and completing a timer for every
  // read and write cost more than the rest of the server's own work on a
  // small request. A deadline is met to within one sweep interval.
  struct connection_entry {
    clock::time_point deadline = clock::time_point::max();  // max: no wait bounded now
    bool idle = false;       // waits for a request, or for the rest of a request's body: a stop may cut it
    bool timed_out = false;  // the deadline passed: the socket was shut down
  };
  // The socket and its entry, as the serving steps see them.
  struct connection {
    socket_type& socket;
    connection_entry& entry;
  };
  struct loop_state {
    boost::asio::io_context* ioc;
    // Every open connection of the loop (touched on this loop only). A flag
    // per entry rather than a second set for the idle ones: marking a
    // connection idle for each request then allocates nothing.
    std::unordered_map<socket_type*, connection_entry> connections;
    bool sweeping = false;                             // a sweep is spawned and not yet ended
    boost::asio::steady_timer* sweep_timer = nullptr;  // the sweep's, while it runs
    bool closed = false;                               // close_all ran: no more sweeps
  };
  // What a connection's coroutine frame touches when it is destroyed. Each
  // connection's outermost coroutine holds a reference, so a frame that its
  // io_context destroys after the server still finds these.
  struct shared_state {
    std::vector<loop_state> loops;  // one per loop, fixed at construction
    std::atomic<std::size_t> in_flight{0};
    std::atomic<std::size_t> connections{0};
  };
  // One connection counted against max_connections from the moment it is
  // accepted, before its session starts on its loop (which may run only
  // after the acceptor has taken more): counted later, a burst could pass
  // the cap. Moved into the session; uncounted when the session's frame
  // goes, also one destroyed before it ever ran.
  class counted_connection {
   public:
    explicit counted_connection(std::shared_ptr<shared_state> state) : state_(std::move(state)) {
      ++state_->connections;
    }
    counted_connection(counted_connection&&) noexcept = default;
    counted_connection& operator=(counted_connection&&) = delete;
    ~counted_connection() {
      if (state_) --state_->connections;
    }

   private:
    std::shared_ptr<shared_state> state_;
  };
  using request_parser = boost::beast::http::request_parser<boost::beast::http::string_body, field_allocator>;
  using error_code = boost::system::error_code;

  boost::asio::awaitable<void> accept_loop();
  bool at_capacity() const;
  void turn_away(boost::asio::ip::tcp::socket socket, std::size_t loop);
  boost::asio::awaitable<void> answer_busy(std::shared_ptr<shared_state> state, boost::asio::ip::tcp::socket socket,
                                           std::size_t loop);
  boost::asio::awaitable<void> session(std::shared_ptr<shared_state> state, counted_connection counted,
                                       boost::asio::ip::tcp::socket socket, std::size_t loop);
  // The loop's sweep ends connections whose deadline passed; it runs while
  // the loop has connections, so that an idle loop has no timer pending.
  static void start_sweep(const std::shared_ptr<shared_state>& state, std::size_t loop);
  static boost::asio::awaitable<void> sweep(std::shared_ptr<shared_state> state, std::size_t loop);

  // Serving one request, in named steps. The ones returning bool tell
  // whether the connection stays open for another request.
  boost::asio::awaitable<bool> serve_one(connection& c, boost::beast::flat_buffer& buffer,
                                         std::pmr::monotonic_buffer_resource& arena, std::size_t loop, bool first);
  boost::asio::awaitable<error_code> read_header(connection& c, boost::beast::flat_buffer& buffer,
                                                 request_parser& parser, bool first);
  std::optional<rejection> check_head(const request_parser& parser, accepted_head& accepted) const;
  std::size_t body_max_used() const;
  std::optional<error_code> parse_buffered_body(connection& c, boost::beast::flat_buffer& buffer,
                                                request_parser& parser, std::size_t& used) const;
  boost::asio::awaitable<error_code> read_body(connection& c, boost::beast::flat_buffer& buffer,
                                               request_parser& parser, bool expect_continue, std::size_t used);
  boost::asio::awaitable<bool> refuse_unreadable(connection& c, const boost::beast::flat_buffer& buffer,
                                                 const request_parser& parser, error_code ec);
  boost::asio::awaitable<bool> reply_and_close(connection& c, const rejection& r, verb method);
  boost::asio::awaitable<bool> respond(connection& c, request req, request_target target, bool keep_alive,
                                       std::size_t loop);
  void count_response(unsigned status_code);
  // Cancels, on each stream's own loop, every stream (or every idle one);
  // with `shut_down`, shuts its socket down as well.
  void cancel_each(bool idle_only, bool shut_down);

  const server_options opts_;
  const router& routes_;
  const std::function<std::size_t()> streams_;
  const std::shared_ptr<shared_state> state_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  std::size_t next_loop_ = 0;
  // accept_loop's: failures since the last warning, and when it was said.
  std::size_t accept_failures_ = 0;
  std::chrono::steady_clock::time_point accept_failure_said_{};
  std::atomic<bool> stopping_{false};
  std::atomic<std::size_t> turned_away_{0};  // connections being answered 503 at the cap
  const std::string busy_;                    // that 503, serialized once
  std::array<std::atomic<std::uint64_t>, 6> responses_{};
};

}  // namespace feed::http
