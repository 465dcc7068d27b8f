#include <algorithm>

#include <boost/beast/http/field.hpp>
#include <boost/json.hpp>
#include <fmt/format.h>

#include "http/blocking.h"
#include "http/handlers/handlers.h"
#include "http/query.h"
#include "http/response.h"

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

// The seq just before the n-th newest event by `user` at or below `head`
// (0 when there are fewer), found page by page so that a large n costs
// bounded memory.
asio::awaitable<result<seq_t>> before_newest(services& s, const std::string& user, std::size_t n, seq_t head) {
  seq_t up_to = head;
  while (n > 0) {
    read_query q{seq_t{0}, up_to, std::min(n, s.opts.history_page), true, user};
    auto read = [&s, q] { return s.db.read(q); };
    auto rows = co_await run_blocking(s.blocking, std::move(read));
    if (!rows) co_return rows.err();
    if (rows->size() < q.limit) co_return seq_t{0};
    n -= rows->size();
    up_to = seq_t{rows->back().seq.value() - 1};
  }
  co_return up_to;
}

// An event that tells a client its Last-Event-ID is ahead of everything
// stored (it came from another database, or the store was reset), and moves
// its Last-Event-ID to the head, where the stream continues.
std::string reset_event(seq_t asked, seq_t head) {
  boost::json::object o{{"reason", "Last-Event-ID is ahead of the newest stored event; continuing from the newest"},
                        {"last_event_id", asked.value()},
                        {"head", head.value()}};
  return fmt::format("event: reset\nid: {}\ndata: {}\n\n", head.value(), boost::json::serialize(o));
}

response unavailable(const request& req, const services& s, std::string_view why) {
  auto res = error_response(req, status::service_unavailable, why);
  res.set(beast::http::field::retry_after, std::to_string(s.opts.retry_after_seconds));
  return res;
}

}  // namespace

// GET /api/feed: history, then live events, with no gap and no duplicate
// between them. The handler only decides where the stream starts; the hub
// takes the socket and reads whatever the ring no longer holds from the
// store at the pace the client drains it (broadcast/hub.h).
handler feed_handler(services& s) {
  return [&s](request_context& ctx) -> asio::awaitable<response> {
    auto parsed = parse_feed_request(ctx, s.opts);
    if (!parsed) co_return error_response(ctx.req, status::bad_request, parsed.err().message);
    feed_request f = std::move(*parsed);
    auto& h = s.fanout.hub_at(ctx.loop);
    stream_start start{seq_t{0}, f.user_id, std::string(kSseHead)};

    if (f.resume_after) {
      start.after = *f.resume_after;
      // Ahead of this instance is normal with Kafka (the event is on its
      // way); ahead of the store is not, and must not hide what follows.
      if (start.after > h.last_seq()) {
        auto probe = [&s] { return s.db.max_seq(); };
        auto head = co_await run_blocking(s.blocking, std::move(probe));
        if (!head) co_return unavailable(ctx.req, s, "cannot read the store: " + head.err().message);
        if (start.after > *head) {
          start.preamble += reset_event(start.after, *head);
          start.after = *head;
        }
      }
    } else if (f.history_all) {
      start.after = seq_t{0};
    } else if (f.user_id) {
      auto at = co_await before_newest(s, *f.user_id, f.history, h.last_seq());
      if (!at) co_return unavailable(ctx.req, s, "cannot read the store: " + at.err().message);
      start.after = *at;
    } else {
      // Seqs have no holes, so the n newest are the last n.
      const auto head = h.last_seq().value();
      start.after = seq_t{head > static_cast<std::int64_t>(f.history) ? head - static_cast<std::int64_t>(f.history) : 0};
    }

    ctx.stream_taken = true;  // from here on the hub owns the connection
    if (h.open(ctx.stream.socket(), std::move(start)) == hub::open_result::closed) {
      boost::system::error_code ignored;
      ctx.stream.socket().shutdown(asio::socket_base::shutdown_send, ignored);
      ctx.stream.socket().close(ignored);
    }
    co_return response{};
  };
}

}  // namespace feed::http
