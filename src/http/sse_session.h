// One SSE connection, from the response head to the close.
//
// The feed handler decides where a stream starts and hands the socket to a
// session; from then on the session alone touches the socket. It gives the
// hub of its event loop what the hub needs of a connection (subscriber.h):
// one non-blocking gather write (sendmsg) per call, a wait for writability
// when the kernel buffer is full, and closing. It also watches for the peer
// closing, so a silent client is noticed before the next write.
//
// Ownership: shared by the hub's subscriber list and by its own pending
// socket waits; it ends when the hub has let it go and the waits are done.
// Thread safety: none; it lives on the event loop that accepted it, which
// must be the hub's.
#pragma once

#include <memory>

#include <boost/asio/ip/tcp.hpp>

#include "broadcast/hub.h"

namespace feed::http {

class sse_session final : public subscriber {
  struct key {
    explicit key() = default;
  };

 public:
  // Takes `socket`, whose request has been read and which has had nothing
  // written, and streams `start` (response head first) from `h` to it.
  // When the hub is shutting down, ends the connection at once.
  static void start(boost::asio::ip::tcp::socket socket, hub& h, stream_start start);

  sse_session(key, boost::asio::ip::tcp::socket socket) : socket_(std::move(socket)) {}

 private:
  sent send(std::span<const iovec> bufs) override;
  void await_writable() override;
  void close(bool finish) override;
  void await_readable();

  boost::asio::ip::tcp::socket socket_;
};

}  // namespace feed::http
