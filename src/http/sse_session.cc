#include "http/sse_session.h"

#include <sys/socket.h>

#include <cerrno>
#include <memory>

#include <boost/asio/bind_allocator.hpp>

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

namespace {

// The wait operations of a stream live as long as it is idle, which may be
// hours. With the default allocator (std::allocator included, which Asio
// treats as "none given") Asio gives them a block from its per-thread
// cache, holding whatever larger operation or coroutine frame was freed
// last: a 288-464 byte block for a smaller operation, per idle subscriber.
// An allocator of its own type makes Asio allocate the operation's size.
template <class T>
struct exact_allocator {
  using value_type = T;
  exact_allocator() = default;
  template <class U>
  exact_allocator(const exact_allocator<U>&) noexcept {}
  T* allocate(std::size_t n) { return std::allocator<T>().allocate(n); }
  void deallocate(T* p, std::size_t n) noexcept { std::allocator<T>().deallocate(p, n); }
  friend bool operator==(const exact_allocator&, const exact_allocator&) noexcept { return true; }
};

template <class Handler>
auto exact_size(Handler h) {
  return asio::bind_allocator(exact_allocator<void>(), std::move(h));
}

}  // namespace

void sse_session::await_writable() {
  socket_.async_wait(asio::socket_base::wait_write,
                     exact_size([self = std::static_pointer_cast<sse_session>(shared_from_this())](
                                    boost::system::error_code ec) { self->writable(!ec); }));
}

void sse_session::await_readable() {
  // Clients send nothing after the request; readability means they closed
  // (or sent junk, which is discarded).
  socket_.async_wait(asio::socket_base::wait_read,
                     exact_size([self = std::static_pointer_cast<sse_session>(shared_from_this())](
                                    boost::system::error_code ec) {
                       if (ec || self->gone()) return;
                       char buf[256];
                       const ssize_t r = ::recv(self->socket_.native_handle(), buf, sizeof buf, MSG_DONTWAIT);
                       if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
                         return self->hung_up();
                       self->await_readable();
                     }));
}

void sse_session::close(bool finish) {
  boost::system::error_code ec;
  if (finish) socket_.shutdown(asio::socket_base::shutdown_send, ec);
  socket_.close(ec);
}

}  // namespace feed::http
