#include <algorithm>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/field.hpp>

#include "base/log.h"
#include "broadcast/subscriber.h"
#include "http/blocking.h"
#include "http/handlers/handlers.h"
#include "http/query.h"
#include "http/response.h"
#include "model/sse_frame.h"

namespace feed::http {
namespace {

constexpr std::string_view kSseHead =
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: text/event-stream\r\n"
    "Cache-Control: no-cache\r\n"
    "Connection: keep-alive\r\n"
    "Access-Control-Allow-Origin: *\r\n"
    "X-Accel-Buffering: no\r\n"
    "Server: feed-api\r\n"
    "\r\n"
    "retry: 2000\n\n";

constexpr std::chrono::seconds kHistoryWriteTimeout{30};
constexpr std::int64_t kMaxHistory = 1'000'000;

struct feed_request {
  std::optional<seq_t> resume_after;  // Last-Event-ID or ?since=
  std::size_t history = 0;            // newest events to send first (no resume)
  bool history_all = false;
  std::optional<std::string> user_id;
};

result<feed_request> parse_feed_request(request_context& ctx, const api_options& opts) {
  feed_request f;
  f.history = opts.history_default;
  // A browser reconnecting sends Last-Event-ID by itself; it wins over a
  // ?since= left in the URL it reconnects to.
  if (auto h = ctx.req["Last-Event-ID"]; !h.empty()) {
    auto v = parse_integer(h, "Last-Event-ID", 0, INT64_MAX);
    if (!v) return v.err();
    f.resume_after = seq_t{*v};
  } else if (auto since = query_param(ctx.url, "since")) {
    auto v = parse_integer(*since, "since", 0, INT64_MAX);
    if (!v) return v.err();
    f.resume_after = seq_t{*v};
  }
  if (auto h = query_param(ctx.url, "history")) {
    if (*h == "all") {
      f.history_all = true;
    } else {
      auto v = parse_integer(*h, "history", 0, kMaxHistory);
      if (!v) return error(errc::invalid_input, v.err().message + " or 'all'");
      f.history = static_cast<std::size_t>(*v);
    }
  }
  if (auto u = query_param(ctx.url, "user_id")) {
    if (auto problem = check_user_id(*u, opts.limits.max_user_id_bytes); !problem.empty())
      return error(errc::invalid_input, problem);
    f.user_id = std::move(*u);
  }
  return f;
}

asio::awaitable<bool> write_frames(beast::tcp_stream& stream, const std::vector<message>& rows) {
  if (rows.empty()) co_return true;
  std::string out;
  for (const auto& m : rows) out += sse_event_frame(m);
  stream.expires_after(kHistoryWriteTimeout);
  auto [ec, n] = co_await asio::async_write(stream, asio::buffer(out), asio::as_tuple(asio::use_awaitable));
  co_return !ec;
}

// Sends every stored event in (after, up_to], page by page.
asio::awaitable<bool> replay(services& s, beast::tcp_stream& stream, seq_t after, seq_t up_to,
                             const std::optional<std::string>& user) {
  while (after < up_to) {
    read_query q{after, up_to, s.opts.history_page, false, user};
    auto read = [&s, q] { return s.db.read(q); };
    auto rows = co_await run_blocking(s.blocking, std::move(read));
    if (!rows) {
      spdlog::warn("sse: history read failed: {}", rows.err().message);
      co_return false;
    }
    if (!co_await write_frames(stream, *rows)) co_return false;
    if (rows->size() < q.limit) break;
    after = rows->back().seq;
  }
  co_return true;
}

}  // namespace

// GET /api/feed: history first, then live events, with no gap and no
// duplicate between them. The live position is reserved in the hub before the
// history is read, so whatever is published meanwhile waits in the ring; the
// history covers exactly the events up to that position.
handler feed_handler(services& s) {
  return [&s](request_context& ctx) -> asio::awaitable<response> {
    auto parsed = parse_feed_request(ctx, s.opts);
    if (!parsed) co_return error_response(ctx.req, status::bad_request, parsed.err().message);
    feed_request f = std::move(*parsed);
    auto& stream = ctx.stream;
    auto& h = s.fanout.hub_at(ctx.loop);
    ctx.stream_taken = true;  // from here on this handler owns the connection

    stream.expires_after(kHistoryWriteTimeout);
    auto [ec, n] = co_await asio::async_write(stream, asio::buffer(kSseHead), asio::as_tuple(asio::use_awaitable));
    if (ec) co_return response{};

    std::optional<seq_t> after = f.resume_after;
    for (;;) {
      const seq_t head = h.last_seq();
      std::shared_ptr<subscriber> sub;
      bool ok = true;
      if (after && h.covers(*after)) {
        sub = h.reserve(*after, *after, f.user_id);
      } else {
        sub = h.reserve(head, after.value_or(seq_t{0}), f.user_id);
        if (after || f.history_all) {
          ok = co_await replay(s, stream, after.value_or(seq_t{0}), head, f.user_id);
        } else if (f.history > 0) {
          read_query q{seq_t{0}, head, f.history, true, f.user_id};
          auto read = [&s, q] { return s.db.read(q); };
    auto rows = co_await run_blocking(s.blocking, std::move(read));
          if (rows) {
            std::reverse(rows->begin(), rows->end());
            ok = co_await write_frames(stream, *rows);
          } else {
            spdlog::warn("sse: history read failed: {}", rows.err().message);
            ok = false;
          }
        }
      }
      if (!ok) break;
      stream.expires_never();
      switch (h.attach(sub, stream.socket())) {
        case hub::attach_result::attached:
          co_return response{};
        case hub::attach_result::closed:
          break;
        case hub::attach_result::fell_behind:
          // Live events overflowed while history was sent: the store has
          // them, so carry on as a resume from the history's end.
          after = head;
          continue;
      }
      break;
    }
    boost::system::error_code ignored;
    stream.socket().shutdown(asio::socket_base::shutdown_send, ignored);
    stream.socket().close(ignored);
    co_return response{};
  };
}

}  // namespace feed::http
