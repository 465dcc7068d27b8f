#include "http/server.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/url/parse.hpp>
#include <fmt/format.h>

#include "base/log.h"
#include "http/response.h"

namespace feed::http {
namespace {

constexpr auto token = asio::as_tuple(asio::use_awaitable);

// Decrements on scope exit, so every return path keeps the counts right.
struct count_guard {
  std::atomic<std::size_t>& n;
  explicit count_guard(std::atomic<std::size_t>& c) : n(c) { ++n; }
  ~count_guard() { --n; }
};

bool is_quiet_close(const boost::system::error_code& ec) {
  return ec == beast::http::error::end_of_stream || ec == asio::error::eof || ec == asio::error::operation_aborted ||
         ec == asio::error::connection_reset || ec == beast::error::timeout || ec == asio::error::bad_descriptor ||
         ec == asio::error::broken_pipe;
}

}  // namespace

server::server(const std::vector<asio::io_context*>& loops, server_options opts, const router& routes,
               std::function<std::size_t()> streams)
    : opts_(std::move(opts)), routes_(routes), streams_(std::move(streams)), acceptor_(*loops.front()) {
  for (auto* ioc : loops) loops_.push_back(std::make_unique<loop_state>(loop_state{ioc, {}, {}}));
}

server::~server() = default;

result<void> server::listen() {
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(opts_.host, ec);
  if (ec) return error(errc::invalid_input, fmt::format("--host {} is not an IP address", opts_.host));
  const asio::ip::tcp::endpoint ep(address, opts_.port);
  acceptor_.open(ep.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(ep, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return error(errc::unavailable, fmt::format("cannot listen on {}:{}: {}", opts_.host, opts_.port, ec.message()));
  port_ = acceptor_.local_endpoint().port();
  return {};
}

void server::start() {
  asio::co_spawn(acceptor_.get_executor(), accept_loop(), [](std::exception_ptr e) {
    if (e) try { std::rethrow_exception(e); } catch (const std::exception& ex) { spdlog::error("http: accept loop: {}", ex.what()); }
  });
}

asio::awaitable<void> server::accept_loop() {
  while (!stopping_) {
    const std::size_t loop = next_loop_++ % loops_.size();
    auto [ec, socket] = co_await acceptor_.async_accept(*loops_[loop]->ioc, token);
    if (ec) {
      if (ec == asio::error::operation_aborted || stopping_) co_return;
      // Out of file descriptors and the like: back off instead of spinning.
      spdlog::warn("http: accept failed: {}", ec.message());
      asio::steady_timer t(acceptor_.get_executor(), std::chrono::milliseconds(50));
      co_await t.async_wait(token);
      continue;
    }
    if (connections_ + (streams_ ? streams_() : 0) >= opts_.max_connections) {
      static constexpr std::string_view busy =
          "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
          "Connection: close\r\nContent-Length: 48\r\n\r\n{\"error\":\"too many open connections; retry later\"}";
      boost::system::error_code ignored;
      socket.non_blocking(true, ignored);
      socket.write_some(asio::buffer(busy), ignored);
      socket.close(ignored);
      continue;
    }
    asio::co_spawn(*loops_[loop]->ioc, session(std::move(socket), loop), [](std::exception_ptr e) {
      if (e) try { std::rethrow_exception(e); } catch (const std::exception& ex) { spdlog::error("http: session: {}", ex.what()); }
    });
  }
}

asio::awaitable<void> server::session(asio::ip::tcp::socket socket, std::size_t loop) {
  count_guard conn(connections_);
  socket.set_option(asio::ip::tcp::no_delay(true));
  beast::tcp_stream stream(std::move(socket));
  auto& state = *loops_[loop];
  state.all.insert(&stream);
  struct unregister {
    loop_state& s;
    beast::tcp_stream* p;
    ~unregister() { s.all.erase(p), s.idle.erase(p); }
  } guard{state, &stream};
  beast::flat_buffer buffer;
  bool first = true;
  while (co_await serve_one(stream, buffer, loop, first)) first = false;
}

// Serves one request; returns whether the connection stays open for another.
asio::awaitable<bool> server::serve_one(beast::tcp_stream& stream, beast::flat_buffer& buffer, std::size_t loop,
                                        bool first) {
  namespace bhttp = beast::http;
  auto& state = *loops_[loop];
  bhttp::request_parser<bhttp::string_body> parser;
  parser.header_limit(static_cast<std::uint32_t>(opts_.max_header_bytes));
  parser.body_limit(opts_.max_body_bytes);

  if (stopping_) co_return false;
  stream.expires_after(first ? opts_.header_timeout : opts_.idle_timeout);
  state.idle.insert(&stream);
  auto [ec, n] = co_await bhttp::async_read_header(stream, buffer, parser, token);
  state.idle.erase(&stream);

  auto reply_and_close = [&](status s, std::string_view msg) -> asio::awaitable<bool> {
    request bare;
    bare.version(11);
    auto res = error_response(bare, s, msg);
    res.keep_alive(false);
    res.prepare_payload();
    responses_[static_cast<unsigned>(s) / 100 % 6].fetch_add(1, std::memory_order_relaxed);
    stream.expires_after(opts_.header_timeout);
    co_await bhttp::async_write(stream, res, token);
    boost::system::error_code ignored;
    stream.socket().shutdown(asio::socket_base::shutdown_send, ignored);
    co_return false;
  };

  if (ec) {
    if (is_quiet_close(ec) || (buffer.size() == 0 && ec == bhttp::error::partial_message)) co_return false;
    if (ec == bhttp::error::body_limit)  // a Content-Length over the limit is caught with the header
      co_return co_await reply_and_close(status::payload_too_large,
                                         fmt::format("request body exceeds {} bytes", opts_.max_body_bytes));
    if (ec == bhttp::error::header_limit)
      co_return co_await reply_and_close(status::request_header_fields_too_large,
                                         fmt::format("request header exceeds {} bytes", opts_.max_header_bytes));
    co_return co_await reply_and_close(status::bad_request, fmt::format("malformed HTTP request: {}", ec.message()));
  }

  count_guard busy(in_flight_);
  const auto& head = parser.get();
  if (const auto cl = parser.content_length(); cl && *cl > opts_.max_body_bytes)
    co_return co_await reply_and_close(status::payload_too_large,
                                       fmt::format("request body exceeds {} bytes", opts_.max_body_bytes));
  if (beast::iequals(head[bhttp::field::expect], "100-continue")) {
    bhttp::response<bhttp::empty_body> cont{status::continue_, 11};
    co_await bhttp::async_write(stream, cont, token);
  }
  if (!parser.is_done()) {
    std::tie(ec, n) = co_await bhttp::async_read(stream, buffer, parser, token);
    if (ec == bhttp::error::body_limit)
      co_return co_await reply_and_close(status::payload_too_large,
                                         fmt::format("request body exceeds {} bytes", opts_.max_body_bytes));
    if (ec) {
      if (is_quiet_close(ec)) co_return false;
      co_return co_await reply_and_close(status::bad_request, fmt::format("malformed HTTP request: {}", ec.message()));
    }
  }

  request req = parser.release();
  auto url = boost::urls::parse_origin_form(req.target());
  if (!url) co_return co_await reply_and_close(status::bad_request, "request target is not a valid path and query");

  request_context ctx{req, *url, stream, loop};
  response res;
  try {
    res = co_await routes_.dispatch(ctx);
  } catch (const std::exception& e) {
    spdlog::error("http: {} {} failed: {}", std::string(req.method_string()), std::string(req.target()), e.what());
    res = error_response(req, status::internal_server_error, "internal error");
  }
  responses_[res.result_int() / 100 % 6].fetch_add(1, std::memory_order_relaxed);
  if (ctx.stream_taken) co_return false;

  const bool keep = req.keep_alive() && !stopping_;
  res.keep_alive(keep);
  res.prepare_payload();
  stream.expires_after(opts_.header_timeout);
  std::tie(ec, n) = co_await bhttp::async_write(stream, res, token);
  if (ec || !keep) {
    boost::system::error_code ignored;
    stream.socket().shutdown(asio::socket_base::shutdown_send, ignored);
    co_return false;
  }
  co_return true;
}

void server::stop_accepting() {
  stopping_ = true;
  asio::post(acceptor_.get_executor(), [this] {
    boost::system::error_code ec;
    acceptor_.close(ec);
  });
}

void server::close_idle() {
  for (auto& l : loops_)
    asio::post(*l->ioc, [s = l.get()] {
      for (auto* stream : s->idle) stream->cancel();
    });
}

void server::close_all() {
  for (auto& l : loops_)
    asio::post(*l->ioc, [s = l.get()] {
      for (auto* stream : s->all) stream->cancel();
    });
}

}  // namespace feed::http
