// One event loop's share of the fan-out: the SSE subscribers that live on
// that loop, and a ring of recent frames they read from.
//
// How it stays fast (see docs/ARCHITECTURE.md): a publish only appends shared,
// pre-serialized frames to the ring and schedules one flush pass. The pass
// visits subscribers in slices (yielding to the loop between slices, so new
// publishes keep arriving and later passes find several frames queued) and
// sends each subscriber everything it has pending in one non-blocking gather
// write (sendmsg). Only when the kernel buffer is full does a subscriber wait
// for writability. A subscriber's "queue" is a cursor into the shared ring,
// so idle subscribers cost a socket and a few words.
//
// Slow clients: a subscriber further behind than client_buffer_bytes, or
// whose next frame has left the ring, is disconnected; it resumes with
// Last-Event-ID and the store fills in what it missed.
//
// Threading: post() may be called from any thread. Everything else runs on
// the hub's io_context thread only (the loop runs one thread).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "broadcast/frame.h"

namespace feed {

struct hub_options {
  std::size_t ring_frames = 65536;              // frames kept for lagging and resuming clients
  std::size_t ring_bytes = 32u << 20;           // ... and at most this many bytes of them
  std::size_t client_buffer_bytes = 4u << 20;   // pending bytes past which a client is dropped
  std::chrono::milliseconds heartbeat{15000};   // comment line interval; 0 disables
  std::size_t flush_slice = 64;                 // subscribers per flush step before yielding
};

// Written on the hub's thread, read by metrics scrapes from any thread.
struct hub_stats {
  std::atomic<std::uint64_t> frames_sent{0};     // frames handed to the kernel, summed over subscribers
  std::atomic<std::uint64_t> writes{0};          // sendmsg calls
  std::atomic<std::uint64_t> dropped_slow{0};    // subscribers disconnected for falling behind
  std::atomic<std::uint64_t> closed_by_peer{0};  // subscribers that hung up
};

class subscriber;

class hub {
 public:
  hub(boost::asio::io_context& ioc, seq_t last, hub_options opts);
  ~hub();
  hub(const hub&) = delete;
  hub& operator=(const hub&) = delete;

  // Any thread. Frames must come in seq order, as the broadcaster sends them.
  void post(std::vector<frame_ptr> frames);

  // ---- hub thread only ----

  seq_t last_seq() const { return last_seq_; }

  // True when the ring still holds every event with seq > after, so a client
  // resuming after `after` needs nothing from the store.
  bool covers(seq_t after) const;

  // A position for a new subscriber: it will receive the events that follow
  // `from` (which must be covered, or be last_seq()), skipping any with seq
  // <= min_seq, and only those by user_id when that is set. Frames published
  // from now on wait for it in the ring while the caller sends history.
  std::shared_ptr<subscriber> reserve(seq_t from, seq_t min_seq, std::optional<std::string> user_id);

  enum class attach_result { attached, fell_behind, closed };
  // Takes the socket (only when attached) and starts sending. fell_behind:
  // frames it needed left the ring while history was being sent; the caller
  // keeps the socket and resumes from the store.
  attach_result attach(const std::shared_ptr<subscriber>& s, boost::asio::ip::tcp::socket& socket);

  std::size_t subscribers() const { return subs_.size(); }
  // Any thread: attached subscribers, for the server's connection cap.
  std::size_t open_streams() const { return open_streams_.load(std::memory_order_relaxed); }
  const hub_stats& stats() const { return stats_; }

  // Sends what can be sent without waiting, then closes every subscriber.
  // Later attach() calls answer closed.
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
  void write(subscriber& s);
  void wait_writable(subscriber& s);
  void wait_readable(subscriber& s);
  void drop(subscriber& s, const char* why, bool slow = false);
  void arm_heartbeat();
  std::uint64_t start_of(std::uint64_t index) const;

  boost::asio::io_context& ioc_;
  const hub_options opts_;
  std::deque<entry> ring_;
  std::uint64_t base_ = 0;         // absolute index of ring_.front()
  std::uint64_t total_bytes_ = 0;  // bytes ever appended
  seq_t last_seq_;
  std::vector<std::shared_ptr<subscriber>> subs_;
  bool flush_scheduled_ = false;
  bool flush_again_ = false;
  bool closed_ = false;
  boost::asio::steady_timer heartbeat_timer_;
  hub_stats stats_;
  std::atomic<std::size_t> open_streams_{0};
};

}  // namespace feed
