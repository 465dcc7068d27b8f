// A connected SSE client as the hub sees it: its socket and its position in
// the hub's frame ring. Owned by the hub (and by pending socket waits, which
// keep it alive until they complete); touched only on the hub's thread.
#pragma once

#include <memory>
#include <string>

#include <boost/asio/ip/tcp.hpp>

#include "base/named_type.h"

namespace feed {

class subscriber : public std::enable_shared_from_this<subscriber> {
 public:
  explicit subscriber(boost::asio::io_context& ioc) : socket(ioc) {}

  boost::asio::ip::tcp::socket socket;
  std::uint64_t cursor = 0;   // absolute ring index of the next frame to send
  std::size_t offset = 0;     // bytes of that frame already sent
  seq_t min_seq;              // events at or below this seq are skipped
  std::string user_id;        // empty: every author
  std::size_t index = 0;      // position in the hub's subscriber list
  bool attached = false;
  bool waiting_write = false;
  bool dead = false;
};

}  // namespace feed
