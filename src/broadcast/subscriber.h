// A connected SSE client as the hub sees it, in two halves:
//
// - the connection (the pure virtuals below), implemented by the HTTP layer's
//   SSE session, which owns the socket: one non-blocking gather write, a wait
//   for writability, and closing. The session tells the hub what the
//   connection does by calling writable() and hung_up().
// - the stream position (private, read and written by the hub only): what
//   must be sent before anything from the ring, where the subscriber is in
//   the ring, and how far its catch-up from the store has got.
//
// Ownership: a subscriber is shared by the hub's list, by pending socket
// waits and by pending store reads; each keeps it alive until it completes.
// Thread safety: none; everything runs on the hub's thread.
#pragma once

#include <sys/uio.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <system_error>

#include "base/named_type.h"
#include "broadcast/frame.h"

namespace feed {

class hub;

class subscriber : public std::enable_shared_from_this<subscriber> {
 public:
  subscriber(const subscriber&) = delete;
  subscriber& operator=(const subscriber&) = delete;

  // What one gather write did: the bytes the kernel took, or the error that
  // stopped it (would_block when the socket buffer was full).
  struct sent {
    std::size_t bytes = 0;
    std::error_code error;
  };

 protected:
  subscriber() = default;
  virtual ~subscriber() = default;

  // ---- the connection: called by the hub, on the hub's thread ----

  // Writes as much of `bufs` as the socket takes now, without waiting.
  virtual sent send(std::span<const iovec> bufs) = 0;
  // Waits until the socket takes bytes again, then calls writable(ok).
  virtual void await_writable() = 0;
  // Closes the socket; with `finish`, ends the stream with a FIN first.
  virtual void close(bool finish) = 0;

  // ---- what the connection tells the hub ----

  // The wait started by await_writable() ended; ok is false when it failed.
  void writable(bool ok);
  // The peer closed the connection (or reading from it failed).
  void hung_up();
  // Whether the hub has let this subscriber go (it may still be closing).
  bool gone() const { return dead_; }

 private:
  friend class hub;

  // The fields a flush pass reads for every subscriber come first, so that
  // a visit to an idle one touches as few cache lines as possible.
  hub* hub_ = nullptr;          // set while attached or owed a callback
  bool attached_ = false;
  bool dead_ = false;           // let go by the hub; never attached again
  bool waiting_write_ = false;  // await_writable() is in flight
  bool from_store_ = false;     // catching up from the store (see below)
  bool reading_ = false;        // a page read is in flight
  bool store_done_ = false;     // the last page came back short

  // Position in the ring. Invariant: offset_ > 0 only while partial_ holds
  // the frame at cursor_, so an evicted frame can still be finished.
  std::uint64_t cursor_ = 0;    // absolute ring index of the next frame to send
  std::size_t offset_ = 0;      // bytes of that frame already sent
  std::uint64_t exempt_until_ = 0;  // ring bytes before this are backlog, not lag
  seq_t min_seq_;               // ring events at or below this seq are skipped
  seq_t position_;              // last event seq sent (or skipped by the filter)
  std::string user_id_;         // empty: every author
  frame_ptr partial_;
  std::chrono::steady_clock::time_point last_progress_;

  // Sent before anything from the ring: the response head, then store pages.
  // Invariant: pending_sent_ <= pending_.size().
  std::size_t pending_sent_ = 0;
  std::string pending_;

  // Catching up from the store (from_store_): events in (position_,
  // store_up_to_] come from store pages; the ring cursor waits at the frame
  // after store_up_to_.
  seq_t store_up_to_;

  std::size_t index_ = 0;       // position in the hub's subscriber list, while attached

  // Whether `f` belongs in this stream: comments go to everyone, events
  // after the start and by the followed author (if any).
  bool wants(const frame& f) const {
    if (f.seq.value() == 0) return true;
    return f.seq > min_seq_ && (user_id_.empty() || f.user_id == user_id_);
  }
  void passed(const frame& f) {
    if (f.seq > position_) position_ = f.seq;
  }
};

}  // namespace feed
