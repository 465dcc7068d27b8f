// One event loop's share of the fan-out: the SSE subscribers that live on
// that loop, and a ring of recent frames they read from.
//
// How it stays fast (see docs/ARCHITECTURE.md): a push only appends shared,
// pre-serialized frames to the ring and schedules one flush pass. The pass
// visits subscribers in slices (yielding to the loop between slices, so new
// pushes keep arriving and later passes find several frames queued) and
// hands each subscriber everything it has pending as one list of buffers,
// which its connection gives the kernel in one non-blocking gather write.
// Only when the kernel buffer is full does a subscriber wait for
// writability. A subscriber's "queue" is a cursor into the shared ring, so
// idle subscribers cost a socket and a few words.
//
// The hub never touches a socket: a subscriber's connection (subscriber.h,
// implemented by the HTTP layer's SSE session) writes, waits and closes, and
// tells the hub when it became writable or the peer hung up.
//
// Catching up: a stream whose start is older than the ring first reads the
// store, one page at a time, asking for the next page only when the socket
// has taken the previous one; then it continues from the ring. A subscriber
// whose place in the ring is evicted goes back to the store the same way.
// So any backlog is delivered at the pace the client reads, and what one
// subscriber holds is at most a page (sized from client_buffer_bytes).
//
// Slow clients: client_buffer_bytes bounds how far a subscriber may fall
// behind the live feed once it has caught up (the backlog it was given to
// read when it started or returned to the ring does not count); a
// subscriber whose socket is full and which is further behind than that is
// disconnected and resumes with Last-Event-ID. What the socket takes at once
// is not behind, and neither is the one event being written, however large:
// an event larger than the buffer still reaches a client that reads it. A
// subscriber whose socket takes nothing for stall_timeout is disconnected
// too.
//
// Threading: push() may be called from any thread. Everything else runs on
// the hub's io_context thread only (the loop runs one thread).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "base/result.h"
#include "broadcast/frame.h"
#include "broadcast/subscriber.h"
#include "store/store.h"

namespace feed {

struct hub_options {
  std::size_t ring_frames = 65536;              // frames kept for lagging and resuming clients
  std::size_t ring_bytes = 32u << 20;           // ... and at most this many bytes of them
  std::size_t client_buffer_bytes = 4u << 20;   // how far a caught-up client may fall behind
  std::chrono::milliseconds heartbeat{15000};   // comment line interval; 0 disables
  std::chrono::milliseconds stall_timeout{60000};  // longest a full socket may take nothing
  std::size_t flush_slice = 64;                 // subscribers per flush step before yielding
  std::size_t page_rows = 1000;                 // rows per store read while catching up, at most
};

// Written on the hub's thread, read by metrics scrapes from any thread.
struct hub_stats {
  std::atomic<std::uint64_t> frames_sent{0};     // frames handed to the kernel, summed over subscribers
  std::atomic<std::uint64_t> writes{0};          // sendmsg calls
  std::atomic<std::uint64_t> dropped_slow{0};    // subscribers disconnected for falling behind or stalling
  std::atomic<std::uint64_t> closed_by_peer{0};  // subscribers that hung up
  std::atomic<std::uint64_t> store_pages{0};     // pages read from the store for catching-up subscribers
};

// Reads a page of stored events for a catching-up subscriber. Called on the
// hub's thread; must not block: `done` may run on any thread, later.
using page_done = std::function<void(result<std::vector<message>>)>;
using page_reader = std::function<void(const read_query&, page_done)>;

// Where a new stream starts.
struct stream_start {
  seq_t after{0};                      // deliver every event with seq > after ...
  std::optional<std::string> user_id;  // ... by this author only, when set
  std::string preamble;                // bytes sent first: the response head, notices
};

class hub {
 public:
  hub(boost::asio::io_context& ioc, seq_t last, hub_options opts, page_reader read_page = {});
  ~hub();
  hub(const hub&) = delete;
  hub& operator=(const hub&) = delete;

  // Any thread. Frames must come in seq order, as the broadcaster sends them.
  void push(std::vector<frame_ptr> frames);

  // ---- hub thread only ----

  seq_t last_seq() const { return last_seq_; }

  // True when the ring still holds every event with seq > after, so a client
  // resuming after `after` needs nothing from the store.
  bool covers(seq_t after) const;

  // The send buffer a subscriber's socket should ask for. Left alone, the
  // kernel grows it to 4 MiB, and a burst of clients asking for the whole
  // history and reading nothing would make the loop copy that much into
  // each (300 of them held posts for seconds). Capped, a client that stops
  // reading pins a bounded amount in all (kernel buffer, one page, its lag),
  // and a reader that keeps up does not notice: loopback drains 256 KiB
  // long before the next pass.
  std::size_t send_buffer_bytes() const;

  enum class open_result { opened, closed };
  // Attaches `s` and streams to it from `start`: from the ring when it
  // covers the start, otherwise from the store up to last_seq() and then
  // the ring. closed: the hub is shutting down (or `s` was opened before)
  // and did not take `s`; its connection is the caller's to close.
  open_result open(std::shared_ptr<subscriber> s, stream_start start);

  std::size_t subscribers() const { return subs_.size(); }
  // Any thread: open streams, for the server's connection cap and metrics.
  std::size_t open_streams() const { return open_streams_.load(std::memory_order_relaxed); }
  const hub_stats& stats() const { return stats_; }

  // Sends what can be sent without waiting, then closes every subscriber.
  // Later open() calls answer closed.
  void close_all();

 private:
  struct entry {
    frame_ptr f;
    std::uint64_t start;  // bytes appended before this frame
    seq_t prev_seq;       // last event seq before this entry
  };

  void append(std::vector<frame_ptr> frames);
  void schedule_flush();
  void flush_from(std::size_t index);
  friend class subscriber;  // writable() and hung_up() report here
  void on_writable(subscriber& s, bool ok);
  void on_hung_up(subscriber& s);

  void write(subscriber& s);
  bool send_some(subscriber& s);
  bool refill(subscriber& s);
  void read_from_store(subscriber& s);
  void on_page(subscriber& s, result<std::vector<message>> rows);
  void return_to_store(subscriber& s);
  void rejoin_ring(subscriber& s);
  std::uint64_t lag(const subscriber& s) const;
  void wait_writable(subscriber& s);
  void drop(subscriber& s, std::string_view why, bool slow = false);
  void arm_heartbeat();
  bool between_events(const subscriber& s) const;
  void arm_stall_sweep();
  std::uint64_t start_of(std::uint64_t index) const;
  std::uint64_t ring_end() const { return base_ + ring_.size(); }

  boost::asio::io_context& ioc_;
  const hub_options opts_;
  const page_reader read_page_;
  const std::size_t page_rows_;
  std::deque<entry> ring_;
  std::uint64_t base_ = 0;         // absolute index of ring_.front()
  std::uint64_t total_bytes_ = 0;  // bytes ever appended
  seq_t last_seq_;
  std::vector<std::shared_ptr<subscriber>> subs_;
  bool flush_scheduled_ = false;
  bool flush_again_ = false;
  bool closed_ = false;
  boost::asio::steady_timer heartbeat_timer_;
  boost::asio::steady_timer stall_timer_;
  hub_stats stats_;
  std::atomic<std::size_t> open_streams_{0};
};

}  // namespace feed
