// A connected SSE client as the hub sees it: its socket, what it must be
// sent before anything from the ring, and its position in the ring. Owned by
// the hub (and by pending socket waits and store reads, which keep it alive
// until they complete); touched only on the hub's thread.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include <boost/asio/ip/tcp.hpp>

#include "base/named_type.h"
#include "broadcast/frame.h"

namespace feed {

class subscriber : public std::enable_shared_from_this<subscriber> {
 public:
  explicit subscriber(boost::asio::io_context& ioc) : socket(ioc) {}

  boost::asio::ip::tcp::socket socket;
  std::string user_id;        // empty: every author

  // Sent before anything from the ring: the response head, then store pages.
  std::string pending;
  std::size_t pending_sent = 0;

  // Catching up from the store: events in (position, store_up_to] come
  // from store pages; the ring cursor waits at the frame after store_up_to.
  bool from_store = false;
  bool reading = false;       // a page read is in flight
  bool store_done = false;    // the last page came back short
  seq_t store_up_to;

  // Position in the ring.
  std::uint64_t cursor = 0;   // absolute ring index of the next frame to send
  std::size_t offset = 0;     // bytes of that frame already sent
  frame_ptr partial;          // that frame while offset > 0, in case the ring evicts it
  seq_t min_seq;              // ring events at or below this seq are skipped
  seq_t position;             // last event seq sent (or skipped by the filter)
  std::uint64_t exempt_until = 0;  // ring bytes before this are backlog, not lag

  std::chrono::steady_clock::time_point last_progress;
  std::size_t index = 0;      // position in the hub's subscriber list
  bool attached = false;
  bool waiting_write = false;
  bool dead = false;
};

}  // namespace feed
