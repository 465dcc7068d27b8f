#include "http/sse_session.h"

#include <sys/socket.h>

#include <cerrno>

namespace feed::http {
namespace asio = boost::asio;

void sse_session::start(asio::ip::tcp::socket socket, hub& h, stream_start start) {
  auto s = std::make_shared<sse_session>(key{}, std::move(socket));
  boost::system::error_code ec;
  s->socket_.non_blocking(true, ec);
  s->socket_.set_option(asio::socket_base::send_buffer_size(static_cast<int>(h.send_buffer_bytes())), ec);
  s->await_readable();
  if (h.open(s, std::move(start)) == hub::open_result::closed) s->close(true);
}

subscriber::sent sse_session::send(std::span<const iovec> bufs) {
  msghdr msg{};
  msg.msg_iov = const_cast<iovec*>(bufs.data());
  msg.msg_iovlen = bufs.size();
  const ssize_t w = ::sendmsg(socket_.native_handle(), &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
  if (w < 0) return {0, std::error_code(errno, std::system_category())};
  return {static_cast<std::size_t>(w), {}};
}

void sse_session::await_writable() {
  socket_.async_wait(asio::socket_base::wait_write,
                     [self = std::static_pointer_cast<sse_session>(shared_from_this())](boost::system::error_code ec) {
                       self->writable(!ec);
                     });
}

void sse_session::await_readable() {
  // Clients send nothing after the request; readability means they closed
  // (or sent junk, which is discarded).
  socket_.async_wait(asio::socket_base::wait_read,
                     [self = std::static_pointer_cast<sse_session>(shared_from_this())](boost::system::error_code ec) {
                       if (ec || self->gone()) return;
                       char buf[256];
                       const ssize_t r = ::recv(self->socket_.native_handle(), buf, sizeof buf, MSG_DONTWAIT);
                       if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
                         return self->hung_up();
                       self->await_readable();
                     });
}

void sse_session::close(bool finish) {
  boost::system::error_code ec;
  if (finish) socket_.shutdown(asio::socket_base::shutdown_send, ec);
  socket_.close(ec);
}

}  // namespace feed::http
