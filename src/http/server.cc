#include "http/server.h"

#include <limits>
#include <stdexcept>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/read_size.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <fmt/format.h>

#include "base/log.h"
#include "http/response.h"
#include "http/serialize.h"

namespace feed::http {
namespace {

namespace bhttp = beast::http;
constexpr auto token = asio::as_tuple(asio::use_awaitable);

// Lingering close bounds: long enough for a client on a slow link to finish
// sending a request we refused, short and small enough that refused clients
// cannot hold connections or bandwidth for long.
constexpr std::chrono::steady_clock::duration kLingerTotal = std::chrono::seconds(2);
constexpr std::chrono::steady_clock::duration kLingerQuiet = std::chrono::seconds(1);
constexpr std::size_t kLingerBytes = 4 << 20;
// Past this many connections lingering after the 503 at the cap, further
// ones are closed at once: the cap is there to save descriptors.
constexpr std::size_t kMaxTurnedAway = 256;
// How often each loop looks for connections past their deadline: a
// deadline is met to within this.
constexpr std::chrono::steady_clock::duration kSweepEvery = std::chrono::milliseconds(200);
// Bytes read from a connection at a time (Beast's read_size hint).
constexpr std::size_t kReadAhead = 65536;

// Decrements on scope exit, so every return path keeps the counts right,
// and so does a coroutine frame destroyed while suspended.
struct count_guard {
  std::atomic<std::size_t>& n;
  explicit count_guard(std::atomic<std::size_t>& c) : n(c) { ++n; }
  ~count_guard() { --n; }
};

// Keeps a connection in its loop's map (so that close_all and the sweep
// reach it) while it lives.
template <class LoopState, class Socket>
struct registration {
  LoopState& s;
  Socket* p;
  typename decltype(LoopState::connections)::mapped_type& entry;
  registration(LoopState& state, Socket* socket) : s(state), p(socket), entry(s.connections[p]) {}
  ~registration() { s.connections.erase(p); }
  registration(const registration&) = delete;
  registration& operator=(const registration&) = delete;
};

void log_failure(std::string_view what, std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    spdlog::error("http: {}: {}", what, ex.what());
  }
}

// The completion handler for a co_spawn of `what`; `what` must outlive it.
auto log_failures(std::string_view what) {
  return [what](std::exception_ptr e) { log_failure(what, e); };
}

bool is_quiet_close(const boost::system::error_code& ec) {
  return ec == beast::http::error::end_of_stream || ec == asio::error::eof || ec == asio::error::operation_aborted ||
         ec == asio::error::connection_reset || ec == beast::error::timeout || ec == asio::error::bad_descriptor ||
         ec == asio::error::broken_pipe;
}

std::string busy_response_bytes() {
  request bare;
  bare.version(11);
  auto res = error_response(bare, status::service_unavailable, "too many open connections; retry later");
  res.set(bhttp::field::retry_after, "1");
  res.keep_alive(false);
  res.prepare_payload();
  head_buffer head;
  append_head(res, head);
  return std::string(head.begin(), head.end()) + res.body();
}

// Whether a response has a field that keep_alive() or prepare_payload()
// would change or filter.
bool has_framing_fields(const response& res) {
  for (const auto& f : res) {
    const auto name = f.name();
    if (name == bhttp::field::connection || name == bhttp::field::content_length ||
        name == bhttp::field::transfer_encoding)
      return true;
  }
  return false;
}

// A HEAD response keeps the framing headers the router gave it (the GET
// body's Content-Length, or none for a stream); prepare_payload would reset
// them to those of its empty body. A 204 or 304 has no body and must not
// carry Content-Length (RFC 9110 §8.6), which prepare_payload would add.
void finish(response& res, verb method, bool keep) {
  if (keep && method != verb::head && res.version() >= 11 && res.result_int() >= 200 &&
      res.result() != status::no_content && res.result() != status::not_modified && !has_framing_fields(res)) {
    // What keep_alive(true) and prepare_payload() come to on such a head:
    // no Connection to add or filter, no Transfer-Encoding to filter, and
    // one Content-Length appended. They would look each field up, some
    // twice, where one walk over a few fields suffices.
    res.insert(bhttp::field::content_length, std::to_string(res.body().size()));
    return;
  }
  // Beast's keep_alive() drops the token a version implies ("keep-alive"
  // in HTTP/1.1, "close" in 1.0); HEAD /api/feed names it, as GET's stream
  // head does.
  const auto said = res[bhttp::field::connection];
  const bool names_it = (keep && said == "keep-alive") || (!keep && said == "close");
  res.keep_alive(keep);
  if (method == verb::head) {
    if (names_it) res.set(bhttp::field::connection, keep ? "keep-alive" : "close");
    return;
  }
  if (res.result() == status::no_content || res.result() == status::not_modified) {
    res.body().clear();
    res.content_length(boost::none);
    return;
  }
  res.prepare_payload();
}

// Head and body as one gathered write; `head` must outlive the write.
std::array<asio::const_buffer, 2> gathered(const response& res, head_buffer& head) {
  append_head(res, head);
  return {asio::buffer(head), asio::buffer(res.body())};
}

asio::awaitable<boost::system::error_code> write_response(asio::ip::tcp::socket& socket, const response& res) {
  head_buffer head;
  auto [ec, n] = co_await asio::async_write(socket, gathered(res, head), token);
  co_return ec;
}

using parse_result = std::pair<boost::system::error_code, std::size_t>;

// Feeds `parser` what `buffer` holds until `done(parser)`, adding the bytes
// it used to `used`: the outcome, or nullopt when the parser needs bytes not
// read yet. A request's bytes are nearly always in the buffer already (its
// body came with its head, and the head with the read that ended the
// keep-alive wait), so callers try this first and start parse_until, a
// coroutine and so a frame of its own, only when it says nullopt.
//
// Past `max_used` bytes it stops with body_limit: Beast bounds a body's
// data but not its chunked framing, so chunk extensions (or a body sent in
// 1-byte chunks) could make a request of any size. A field Beast cannot
// hold (a trailer over 64 KiB: it throws) is header_limit, as a head's
// would be.
//
// `check(bytes)` looks at the unparsed bytes whenever more are needed; an
// error from it is the outcome.
template <class Parser, class Done, class Check>
std::optional<boost::system::error_code> parse_buffered(beast::flat_buffer& buffer, Parser& parser,
                                                        std::size_t max_used, const Done& done, Check& check,
                                                        std::size_t& used) {
  const auto more = [&]() -> std::optional<boost::system::error_code> {
    const auto bytes = buffer.data();
    if (auto ec = check(std::string_view(static_cast<const char*>(bytes.data()), bytes.size()))) return ec;
    return std::nullopt;
  };
  while (!done(parser)) {
    if (buffer.size() == 0) return more();
    boost::system::error_code ec;
    std::size_t n = 0;
    try {
      n = parser.put(buffer.data(), ec);
    } catch (const std::length_error&) {
      return boost::system::error_code(bhttp::error::header_limit);
    }
    used += n;
    if (n) check.consumed(std::string_view(static_cast<const char*>(buffer.data().data()), n));
    buffer.consume(n);
    // After each put, whether or not it ended the message: one put may
    // take a whole buffer of framing.
    if (used > max_used) return boost::system::error_code(bhttp::error::body_limit);
    if (!ec) continue;
    if (ec != bhttp::error::need_more) return ec;
    return more();
  }
  return boost::system::error_code{};
}

// A head's lines end in CRLF (RFC 9112 §2.2), and Beast refuses a head with
// a bare CR or LF with 400, but only once it has the whole head, which it
// recognizes by CRLF CRLF alone. A head holding a bare CR or LF whose
// client waits for an answer before sending more therefore waited out the
// header timeout and got none, or got its 400 at once, depending on how
// the client's writes were cut. This finds the bad ending as it arrives.
// It is shown the bytes not parsed yet, and told what the parser took
// (Beast takes a head's start line before the rest has come), so each byte
// is looked at once.
//
// A chunked body's lines (chunk sizes, the trailer) end in CRLF too
// (RFC 9112 §7.1), and Beast looks for CRLF alone there: a chunk-size line
// ended by a bare LF waited out the header timeout with no answer. Beast
// takes a chunk's data as it comes, so what is left unparsed in a body is
// always framing. A body of known length has no lines: `lines` false.
class line_endings {
 public:
  explicit line_endings(bool lines = true) : next_(lines ? 0 : std::string_view::npos) {}

  boost::system::error_code operator()(std::string_view rest) {
    if (next_ == std::string_view::npos) return {};
    for (; next_ < rest.size(); ++next_) {
      const char c = rest[next_];
      const char before = next_ ? rest[next_ - 1] : before_;
      if (c == '\n' && before != '\r') return bhttp::error::bad_line_ending;
      if (c != '\r') continue;
      if (next_ + 1 == rest.size()) break;  // its LF may be in the next read
      if (rest[next_ + 1] != '\n') return bhttp::error::bad_line_ending;
    }
    return {};
  }

  // The parser took `taken`, the first bytes of what it was shown.
  void consumed(std::string_view taken) {
    if (next_ == std::string_view::npos) return;
    before_ = taken.back();
    next_ = next_ > taken.size() ? next_ - taken.size() : 0;
  }

 private:
  std::size_t next_ = 0;
  char before_ = 0;  // the byte before the first one not parsed
};

// RFC 9112 §2.2: a server SHOULD ignore at least one empty line (CRLF)
// received before a request-line. Old clients send one after a POST's
// body; on a kept-alive connection it would otherwise be read as the next
// request and answered 400, closing the connection under the client's next
// request. Drops every CRLF at the front of `buffer` and says how many
// bytes went. A bare LF is not an empty line here, as it is not a line
// ending anywhere else in a head.
std::size_t drop_empty_lines(beast::flat_buffer& buffer) {
  const std::string_view bytes(static_cast<const char*>(buffer.data().data()), buffer.size());
  std::size_t n = 0;
  while (n + 1 < bytes.size() && bytes[n] == '\r' && bytes[n + 1] == '\n') n += 2;
  buffer.consume(n);
  return n;
}

// What is left after drop_empty_lines could still be an empty line.
bool may_be_empty_line(const beast::flat_buffer& buffer) {
  return buffer.size() == 0 || (buffer.size() == 1 && *static_cast<const char*>(buffer.data().data()) == '\r');
}

// Beast adds a chunked body's trailer fields to the head's. RFC 9110
// §6.5.1: a recipient MUST NOT merge a trailer field into the header
// section unless its definition allows it, and none of the fields this
// server reads allows it (an Idempotency-Key, Content-Length or
// Last-Event-ID in a trailer would otherwise be acted on, where a proxy
// that forwards trailers without reading them sees a different request).
// Nothing here needs a trailer, so every one is dropped. Beast files a
// field beside an earlier one of the same name, not at the end, so the
// head's fields are told apart by identity: `head_fields` lists them.
template <class Message>
std::vector<const void*> field_identities(const Message& m) {
  std::vector<const void*> out;
  for (const auto& f : m) out.push_back(&f);
  return out;
}

template <class Message>
void drop_trailer_fields(Message& m, const std::vector<const void*>& head_fields) {
  for (auto it = m.begin(); it != m.end();) {
    if (std::find(head_fields.begin(), head_fields.end(), &*it) == head_fields.end()) it = m.erase(it);
    else ++it;
  }
}

constexpr auto body_done = [](const auto& p) { return p.is_done(); };

// Reads from `socket` and parses until parse_buffered has an outcome: what
// beast::http::async_read_header and async_read do (their end-of-stream,
// partial-message and buffer-overflow answers included), without their
// composed operations, which complete through the scheduler even when
// nothing is read. `used` is what parse_buffered used before; the second
// value is the parser's total.
template <class Parser, class Done, class Check>
asio::awaitable<parse_result> parse_until(asio::ip::tcp::socket& socket, beast::flat_buffer& buffer,
                                          Parser& parser, std::size_t max_used, Done done, Check& check,
                                          std::size_t used) {
  for (;;) {
    const std::size_t size = beast::read_size(buffer, kReadAhead);
    if (size == 0) co_return parse_result{bhttp::error::buffer_overflow, used};
    auto [ec, n] = co_await socket.async_read_some(buffer.prepare(size), token);
    buffer.commit(n);
    if (ec == asio::error::eof) {
      if (!parser.got_some()) co_return parse_result{bhttp::error::end_of_stream, used};
      boost::system::error_code end;
      parser.put_eof(end);  // a request cut short: partial_message
      co_return parse_result{end, used};
    }
    if (ec) co_return parse_result{ec, used};
    if (auto outcome = parse_buffered(buffer, parser, max_used, done, check, used))
      co_return parse_result{*outcome, used};
  }
}

// An operation's error as the session sees it: every error of a connection
// whose deadline passed (its socket shut down and its operations
// cancelled) is a timeout.
boost::system::error_code seen(const boost::system::error_code& ec, bool timed_out) {
  return timed_out && ec ? beast::error::timeout : ec;
}

// After an error answer the client may still be sending its request.
// Closing a socket with unread input makes the kernel send a reset, which
// can destroy the answer in the client's receive buffer before the client
// reads it. So, like nginx's lingering close: stop sending, read and discard
// until the client closes or a bound is reached, then close.
template <class Connection>
asio::awaitable<void> linger_close(Connection& c) {
  boost::system::error_code ec;
  c.socket.shutdown(asio::socket_base::shutdown_send, ec);
  const auto deadline = std::chrono::steady_clock::now() + kLingerTotal;
  std::array<char, 8192> sink;
  for (std::size_t discarded = 0; !ec && discarded < kLingerBytes && !c.entry.timed_out;) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) break;
    c.entry.deadline = std::min(deadline, now + kLingerQuiet);
    std::size_t n = 0;
    std::tie(ec, n) = co_await c.socket.async_read_some(asio::buffer(sink), token);
    discarded += n;
  }
  c.socket.close(ec);
}

}  // namespace

server::server(const std::vector<asio::io_context*>& loops, server_options opts, const router& routes,
               std::function<std::size_t()> streams)
    : opts_(std::move(opts)),
      routes_(routes),
      streams_(std::move(streams)),
      state_(std::make_shared<shared_state>()),
      acceptor_(*loops.front()),
      busy_(busy_response_bytes()) {
  state_->loops.reserve(loops.size());
  for (auto* ioc : loops) state_->loops.push_back(loop_state{ioc, {}});
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
  asio::co_spawn(acceptor_.get_executor(), accept_loop(), log_failures("accept loop"));
}

void server::count_response(unsigned status_code) {
  responses_[status_code / 100 % 6].fetch_add(1, std::memory_order_relaxed);
}

bool server::at_capacity() const {
  return state_->connections + (streams_ ? streams_() : 0) >= opts_.max_connections;
}

asio::awaitable<void> server::accept_loop() {
  while (!stopping_) {
    const std::size_t loop = next_loop_++ % state_->loops.size();
    auto [ec, socket] = co_await acceptor_.async_accept(*state_->loops[loop].ioc, token);
    if (ec) {
      if (ec == asio::error::operation_aborted || stopping_) co_return;
      // Out of file descriptors and the like: back off instead of spinning,
      // and say so once every 10 s, not on every retry (20 a second).
      const auto now = std::chrono::steady_clock::now();
      ++accept_failures_;
      if (now - accept_failure_said_ >= std::chrono::seconds(10)) {
        spdlog::warn("http: accept failed: {} ({} time(s) since the last such warning)", ec.message(),
                     accept_failures_);
        accept_failures_ = 0;
        accept_failure_said_ = now;
      }
      asio::steady_timer t(acceptor_.get_executor(), std::chrono::milliseconds(50));
      co_await t.async_wait(token);
      continue;
    }
    if (at_capacity()) {
      turn_away(std::move(socket), loop);
      continue;
    }
    asio::co_spawn(*state_->loops[loop].ioc, session(state_, counted_connection(state_), std::move(socket), loop),
                   log_failures("session"));
  }
}

// Answers 503 on the connection's own loop, so that lingering never blocks
// the accept loop.
void server::turn_away(asio::ip::tcp::socket socket, std::size_t loop) {
  count_response(503);
  if (turned_away_ >= kMaxTurnedAway) {
    boost::system::error_code ignored;
    socket.non_blocking(true, ignored);
    socket.write_some(asio::buffer(busy_), ignored);  // a fresh socket's send buffer takes it whole
    socket.close(ignored);
    return;
  }
  ++turned_away_;
  asio::co_spawn(*state_->loops[loop].ioc, answer_busy(state_, std::move(socket), loop), [this](std::exception_ptr e) {
    --turned_away_;
    log_failure("503 at the connection cap", e);
  });
}

// `state` is a parameter so that it is destroyed last, after the guards that
// refer to it, also when the io_context destroys the suspended frame.
asio::awaitable<void> server::answer_busy(std::shared_ptr<shared_state> state, asio::ip::tcp::socket socket,
                                          std::size_t loop) {
  registration tracked(state->loops[loop], &socket);
  connection c{socket, tracked.entry};
  start_sweep(state, loop);
  c.entry.deadline = clock::now() + opts_.header_timeout;
  auto [ec, n] = co_await asio::async_write(socket, asio::buffer(busy_), token);
  if (!ec) co_await linger_close(c);
}

// Like answer_busy, holds `state` for its guards and for those of the steps
// it awaits, whose frames are destroyed before this one.
asio::awaitable<void> server::session(std::shared_ptr<shared_state> state, counted_connection,
                                      asio::ip::tcp::socket socket, std::size_t loop) {
  socket.set_option(asio::ip::tcp::no_delay(true));
  registration tracked(state->loops[loop], &socket);
  connection c{socket, tracked.entry};
  start_sweep(state, loop);
  // Bounded: a chunk-size line or a trailer is kept whole until it is
  // parsed, and each may be any length. Past the bound the read fails with
  // buffer_overflow (413). A head stops at its own, lower, limit.
  beast::flat_buffer buffer(opts_.max_header_bytes + kReadAhead);
  // Room for a typical request's and response's header fields; past it the
  // arena takes blocks from the heap until the next reset.
  std::array<std::byte, 2048> arena_bytes;
  std::pmr::monotonic_buffer_resource arena(arena_bytes.data(), arena_bytes.size());
  bool first = true;
  while (co_await serve_one(c, buffer, arena, loop, first)) first = false;
}

void server::start_sweep(const std::shared_ptr<shared_state>& state, std::size_t loop) {
  auto& l = state->loops[loop];
  // Set here, not when the sweep first runs: a burst of connections
  // accepted before then would each spawn one.
  if (l.sweeping || l.closed) return;
  l.sweeping = true;
  asio::co_spawn(*l.ioc, sweep(state, loop), log_failures("connection sweep"));
}

// Holds `state` like a session; its timer is in its frame, so it is gone
// with the frame, whoever destroys that.
asio::awaitable<void> server::sweep(std::shared_ptr<shared_state> state, std::size_t loop) {
  auto& l = state->loops[loop];
  asio::steady_timer timer(co_await asio::this_coro::executor);
  l.sweep_timer = &timer;
  struct unset {
    loop_state& l;
    ~unset() {
      l.sweep_timer = nullptr;
      l.sweeping = false;
    }
  } running{l};
  while (!l.connections.empty() && !l.closed) {
    timer.expires_after(kSweepEvery);
    if (auto [ec] = co_await timer.async_wait(token); ec) break;
    const auto now = clock::now();
    for (auto& [socket, entry] : l.connections) {
      if (entry.deadline > now) continue;
      // Shut down as well as cancelled: a session between two operations
      // (beast parses bytes already read in a posted step) has none to
      // cancel, and its next one then fails at once. The first time only
      // the receiving side, so that a request cut off half-way can still be
      // told 408 (a write that then outlasts its own deadline ends here).
      boost::system::error_code ignored;
      socket->shutdown(entry.timed_out ? asio::socket_base::shutdown_both : asio::socket_base::shutdown_receive,
                       ignored);
      entry.timed_out = true;
      socket->cancel(ignored);
    }
  }
}

asio::awaitable<bool> server::serve_one(connection& c, beast::flat_buffer& buffer,
                                        std::pmr::monotonic_buffer_resource& arena, std::size_t loop, bool first) {
  if (stopping_) co_return false;
  // The previous request and its response are gone, and with them all that
  // the arena held.
  arena.release();
  request_parser parser(std::piecewise_construct, std::make_tuple(), std::make_tuple(field_allocator(&arena)));
  parser.header_limit(static_cast<std::uint32_t>(opts_.max_header_bytes));
  parser.body_limit(opts_.max_body_bytes);
  if (auto ec = co_await read_header(c, buffer, parser, first))
    co_return co_await refuse_unreadable(c, buffer, parser, ec);

  count_guard busy(state_->in_flight);
  accepted_head accepted;
  if (auto bad = check_head(parser, accepted)) co_return co_await reply_and_close(c, *bad, parser.get().method());
  if (!parser.is_done()) {
    // Only a chunked body can bring trailer fields.
    const auto head_fields = parser.chunked() ? field_identities(parser.get()) : std::vector<const void*>{};
    // A body that came with its head is parsed here, without the frame
    // of read_body, which goes on from where this stopped.
    std::size_t used = 0;
    std::optional<error_code> outcome;
    if (!accepted.expect_continue && !stopping_) outcome = parse_buffered_body(c, buffer, parser, used);
    if (!outcome) outcome = co_await read_body(c, buffer, parser, accepted.expect_continue, used);
    if (*outcome) co_return co_await refuse_unreadable(c, buffer, parser, *outcome);
    if (parser.chunked()) drop_trailer_fields(parser.get(), head_fields);
  }
  // The handler's own waits are bounded by the handler.
  c.entry.deadline = clock::time_point::max();
  co_return co_await respond(c, parser.release(), std::move(accepted.target), accepted.keep_alive, loop);
}

// A connection's first request must arrive, header and body, within the
// header timeout. A keep-alive connection may then wait up to the idle
// timeout for its next request to begin, and from its first byte the same
// header timeout applies: a request trickled in on a kept-alive connection
// gets no more time than one on a fresh connection, and one that starts
// just before the idle deadline is not cut by it.
asio::awaitable<server::error_code> server::read_header(connection& c, beast::flat_buffer& buffer,
                                                        request_parser& parser, bool first) {
  c.entry.idle = true;
  // Empty lines that came after the previous request leave the connection
  // idle; any that arrive later count as the start of this request, under
  // the header timeout and within the head's byte limit.
  std::size_t skipped = first ? 0 : drop_empty_lines(buffer);
  if (!first && buffer.size() == 0) {
    c.entry.deadline = clock::now() + opts_.idle_timeout;
    auto [ec, n] = co_await c.socket.async_read_some(buffer.prepare(beast::read_size(buffer, kReadAhead)), token);
    if (ec) {
      c.entry.idle = false;
      co_return seen(ec, c.entry.timed_out);
    }
    buffer.commit(n);
  }
  c.entry.deadline = clock::now() + opts_.header_timeout;
  for (;;) {
    skipped += drop_empty_lines(buffer);
    // However the writes cut them: counted before looking at what follows.
    if (skipped > opts_.max_header_bytes) {
      c.entry.idle = false;
      co_return bhttp::error::header_limit;
    }
    if (!may_be_empty_line(buffer)) break;
    auto [ec, n] = co_await c.socket.async_read_some(buffer.prepare(beast::read_size(buffer, kReadAhead)), token);
    buffer.commit(n);
    if (ec) {
      c.entry.idle = false;
      // Nothing but empty lines before the end: a connection closed between requests.
      co_return seen(ec == asio::error::eof ? boost::system::error_code(bhttp::error::end_of_stream) : ec,
                     c.entry.timed_out);
    }
  }
  parser.eager(false);
  // The head's own limit is Beast's header_limit (and the check below).
  constexpr auto max_used = std::numeric_limits<std::size_t>::max();
  const auto head_done = [](const auto& p) { return p.is_header_done(); };
  std::size_t used = 0;
  parse_result parsed;
  line_endings check;
  if (auto outcome = parse_buffered(buffer, parser, max_used, head_done, check, used)) parsed = {*outcome, used};
  else parsed = co_await parse_until(c.socket, buffer, parser, max_used, head_done, check, used);
  const auto [ec, n] = parsed;
  c.entry.idle = false;
  // Beast enforces its header limit only while the head is incomplete in the
  // buffer: a head that arrives whole in one read passes however long it
  // is, so the same head was refused or served depending on how the client's
  // writes were cut. `n` is the head's length, so the limit is exact here.
  if (!ec && n > opts_.max_header_bytes) co_return bhttp::error::header_limit;
  co_return seen(ec, c.entry.timed_out);
}

std::optional<rejection> server::check_head(const request_parser& parser, accepted_head& accepted) const {
  if (auto bad = check_request_head(parser.get(), accepted)) return bad;
  // Whatever check_request_head accepts, the parser must frame the same way,
  // or the rest of the body would be read as the next request.
  if (accepted.transfer_encoding && !parser.chunked())
    return rejection{status::bad_request, "Transfer-Encoding must be exactly 'chunked'"};
  if (const auto cl = parser.content_length(); cl && *cl > opts_.max_body_bytes)
    return body_too_large(opts_.max_body_bytes);
  return std::nullopt;
}

// Room for the body's data in chunks of one byte each ("1\r\nx\r\n") and a
// trailer the size of a head: any client's framing, none that grows
// without end.
std::size_t server::body_max_used() const { return 8 * opts_.max_body_bytes + opts_.max_header_bytes; }

std::optional<server::error_code> server::parse_buffered_body(connection& c, beast::flat_buffer& buffer,
                                                              request_parser& parser, std::size_t& used) const {
  parser.eager(true);
  line_endings check(parser.chunked());
  const auto outcome = parse_buffered(buffer, parser, body_max_used(), body_done, check, used);
  if (!outcome) return std::nullopt;
  return seen(*outcome, c.entry.timed_out);
}

asio::awaitable<server::error_code> server::read_body(connection& c, beast::flat_buffer& buffer,
                                                      request_parser& parser, bool expect_continue,
                                                      std::size_t used) {
  // A request whose body is still on its way is no post yet: a stop ends
  // it as it ends idle connections (close_idle), instead of waiting for a
  // stalled upload until the header timeout.
  if (stopping_) co_return asio::error::operation_aborted;
  if (expect_continue) {
    bhttp::response<bhttp::empty_body> cont{status::continue_, 11};
    auto [ec, n] = co_await bhttp::async_write(c.socket, cont, token);
    if (ec) co_return seen(ec, c.entry.timed_out);
  }
  parser.eager(true);
  const std::size_t max_used = body_max_used();
  if (stopping_) co_return asio::error::operation_aborted;  // began while the 100 was sent
  c.entry.idle = true;
  parse_result parsed;
  line_endings check(parser.chunked());
  if (auto outcome = parse_buffered(buffer, parser, max_used, body_done, check, used)) parsed = {*outcome, used};
  else parsed = co_await parse_until(c.socket, buffer, parser, max_used, body_done, check, used);
  c.entry.idle = false;
  co_return seen(parsed.first, c.entry.timed_out);
}

asio::awaitable<bool> server::refuse_unreadable(connection& c, const beast::flat_buffer& buffer,
                                                const request_parser& parser, error_code ec) {
  // A request begun and not finished in time is told so (RFC 9110
  // §15.5.9); a connection that sent nothing of one is closed unanswered,
  // as between keep-alive requests a 408 could be taken for the answer to a
  // request the client is just sending.
  if (ec == beast::error::timeout && c.entry.timed_out && (parser.got_some() || buffer.size() > 0)) {
    // Named, not a temporary in the co_await: GCC 12 may destroy such a
    // temporary before the awaited coroutine has used it.
    const rejection late{status::request_timeout, "the request was not received within the header timeout"};
    co_return co_await reply_and_close(c, late, parser.get().method());
  }
  // A client that went away, or closed between requests, is not answered.
  if (is_quiet_close(ec) || (buffer.size() == 0 && ec == bhttp::error::partial_message)) co_return false;
  // The method is known once the request line is read, before the rest of
  // the head (a fresh parser's message says verb::unknown until then): an
  // error in a HEAD request's fields or body gets no body either (RFC 9110
  // §9.3.2).
  const verb method = parser.get().method();
  const auto why = unreadable_request(ec, opts_.max_body_bytes, opts_.max_header_bytes);
  co_return co_await reply_and_close(c, why, method);
}

asio::awaitable<bool> server::reply_and_close(connection& c, const rejection& r, verb method) {
  request bare;
  bare.version(11);
  auto res = error_response(bare, r.code, r.message);
  if (method == verb::head) strip_body_for_head(res);
  finish(res, method, false);
  count_response(res.result_int());
  c.entry.deadline = clock::now() + opts_.header_timeout;
  if (!co_await write_response(c.socket, res)) co_await linger_close(c);
  co_return false;
}

asio::awaitable<bool> server::respond(connection& c, request req, request_target target, bool keep_alive,
                                      std::size_t loop) {
  // `target` views the target as the parser held it. Moving the request out
  // of the parser keeps its fields' storage (Beast moves the pointers), but
  // should that ever change, the target is parsed again rather than read
  // from freed memory. check_request_head accepted it, so it parses.
  if (target.text().data() != req.target().data()) target = *request_target::parse(req.target());
  request_context ctx{req, std::move(target), c.socket, loop, keep_alive};
  // The router's decision and the handler run here rather than in
  // router::dispatch, a coroutine of its own: a frame, a resumption and a
  // move of the response fewer per request.
  // Emplaced, never assigned: a response's fields live in the request's
  // arena, and moving them by assignment copies each one.
  std::optional<response> answer;
  try {
    auto decision = routes_.decide(ctx);
    if (auto* handler = std::get_if<const http::handler*>(&decision)) {
      answer.emplace(co_await (**handler)(ctx));
      router::fit_to_method(req, *answer);
    } else {
      answer.emplace(std::move(std::get<response>(decision)));
    }
  } catch (const std::exception& e) {
    spdlog::error("http: {} {} failed: {}", std::string_view(req.method_string()), std::string_view(req.target()),
                  e.what());
    answer.reset();
  }
  if (!answer) {
    answer.emplace(error_response(req, status::internal_server_error, "internal error"));
    router::fit_to_method(req, *answer);
  }
  response& res = *answer;
  count_response(res.result_int());
  if (ctx.stream_taken) co_return false;

  const bool keep = keep_alive && !stopping_;
  finish(res, req.method(), keep);
  c.entry.deadline = clock::now() + opts_.header_timeout;
  // Written here rather than by write_response: a frame fewer per request.
  head_buffer head;
  auto [ec, n] = co_await asio::async_write(c.socket, gathered(res, head), token);
  if (ec || !keep) {
    boost::system::error_code ignored;
    c.socket.shutdown(asio::socket_base::shutdown_send, ignored);
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

void server::close_idle() { cancel_each(true, false); }

// A cancel ends only the operations already waiting. A request between two
// of them (beast parses body bytes that came with the head in a posted step,
// before it reads the socket) would start its next one after the cancel and
// wait out its timeout; a socket shut down fails that one too.
void server::close_all() { cancel_each(false, true); }

// The posted work holds the state: it may still be queued when the server
// is destroyed.
void server::cancel_each(bool idle_only, bool shut_down) {
  for (std::size_t i = 0; i < state_->loops.size(); ++i)
    asio::post(*state_->loops[i].ioc, [state = state_, i, idle_only, shut_down] {
      auto& l = state->loops[i];
      for (auto& [socket, entry] : l.connections) {
        if (idle_only && !entry.idle) continue;
        boost::system::error_code ignored;
        if (shut_down) socket->shutdown(asio::socket_base::shutdown_both, ignored);
        socket->cancel(ignored);
      }
      // After close_all nothing is left to time out, and a pending sweep
      // would keep the loop from running out of work.
      if (shut_down) {
        l.closed = true;
        if (l.sweep_timer) l.sweep_timer->cancel();
      }
    });
}

}  // namespace feed::http
