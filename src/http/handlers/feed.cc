#include <algorithm>
#include <string>
#include <utility>
#include <variant>

#include <boost/beast/http/field.hpp>
#include <boost/json.hpp>
#include <fmt/format.h>

#include "http/blocking.h"
#include "http/feed_plan.h"
#include "http/handlers/handlers.h"
#include "http/query.h"
#include "http/response.h"
#include "http/serialize.h"
#include "http/sse_session.h"

namespace feed::http {
namespace {

// The stream's head: event_stream_head, with "keep-alive" (what SSE
// servers, the reference among them, say) only for a client whose
// Connection options, as the server read them (every Connection line), did
// not ask for the connection to close (RFC 9112 §9.6). It has no length, so
// the stream ends when the connection closes. Then the client's reconnect
// delay.
std::string sse_head(const request_context& ctx) {
  auto res = event_stream_head(ctx.req);
  res.set(beast::http::field::connection, ctx.keep_alive ? "keep-alive" : "close");
  head_buffer head;
  append_head(res, head);
  std::string out(head.begin(), head.end());
  out.append("retry: 2000\n\n");
  return out;
}

feed_params params_of(const request_context& ctx) {
  return {ctx.req["Last-Event-ID"], query_param(ctx.url, "since"), query_param(ctx.url, "history"),
          query_param(ctx.url, "user_id")};
}

// The seq just before the n-th newest event by `user` at or below `head`
// (0 when there are fewer), found page by page so that a large n costs
// bounded memory.
asio::awaitable<result<seq_t>> before_newest(services& s, const std::string& user, std::size_t n, seq_t head) {
  seq_t up_to = head;
  while (n > 0) {
    read_query q{seq_t{0}, up_to, std::min(n, s.opts.history_page), true, user};
    auto read = [&s, q] { return s.db.read(q); };
    auto rows = co_await run_blocking(s.blocking, std::move(read), s.opts.store_wait, "the store");
    if (!rows) co_return rows.err();
    if (rows->size() < q.limit) co_return seq_t{0};
    n -= rows->size();
    up_to = seq_t{rows->back().seq.value() - 1};
  }
  co_return up_to;
}

// An event that tells a client its resume point (Last-Event-ID, or ?since=
// when no header came) is ahead of everything stored (it came from another
// database, or the store was reset), and moves its Last-Event-ID to the
// head, where the stream continues. The field keeps its name either way.
std::string reset_event(seq_t asked, seq_t head, std::string_view given_as) {
  boost::json::object o{{"reason", fmt::format("{} is ahead of the newest stored event; continuing from the newest",
                                               given_as)},
                        {"last_event_id", asked.value()},
                        {"head", head.value()}};
  return fmt::format("event: reset\nid: {}\ndata: {}\n\n", head.value(), boost::json::serialize(o));
}

response unavailable(const request& req, const services& s, std::string_view why) {
  auto res = error_response(req, status::service_unavailable, why);
  res.set(beast::http::field::retry_after, std::to_string(s.opts.retry_after_seconds));
  return res;
}

// Where a stream for this request starts, or the answer that refuses it
// (400 for its parameters, 503 when the store cannot be read). GET and HEAD
// ask the same, so that HEAD answers with GET's status.
// The store's newest seq, asked on the blocking pool within the store wait.
asio::awaitable<result<seq_t>> store_head(services& s) {
  co_return co_await run_blocking(s.blocking, [&s] { return s.db.max_seq(); }, s.opts.store_wait, "the store");
}

asio::awaitable<std::variant<response, stream_start>> prepare_stream(services& s, const request_context& ctx) {
  auto& h = s.fanout.hub_at(ctx.loop);
  const feed_limits limits{s.opts.history_default, s.opts.limits.max_user_id_bytes};
  if (auto once = given_once(ctx.url, {"since", "history", "user_id"}); !once)
    co_return error_response(ctx.req, status::bad_request, once.err().message);
  auto planned = plan_feed(params_of(ctx), limits, h.last_seq());
  if (!planned) co_return error_response(ctx.req, status::bad_request, planned.err().message);
  feed_plan plan = std::move(*planned);
  stream_start start{plan.after, plan.user_id, sse_head(ctx)};

  if (plan.check_store_head) {
    auto head = co_await store_head(s);
    if (!head) co_return unavailable(ctx.req, s, "cannot read the store: " + head.err().message);
    if (start.after > *head) {
      const bool by_header = !ctx.req["Last-Event-ID"].empty();
      start.preamble += reset_event(start.after, *head, by_header ? "Last-Event-ID" : "?since=");
      start.after = *head;
    }
  } else if (plan.from == feed_plan::start::newest_by_author) {
    auto at = co_await before_newest(s, *plan.user_id, plan.newest, plan.after);
    if (!at) co_return unavailable(ctx.req, s, "cannot read the store: " + at.err().message);
    start.after = *at;
  } else if (!h.covers(start.after)) {
    // The hub reads this stream's first events from the store once its head
    // is sent. A store that cannot answer is said now, as a 503, rather than
    // by a 200 that sends nothing and ends, which a client takes as an empty
    // feed (EventSource then reconnects every 2 s).
    auto head = co_await store_head(s);
    if (!head) co_return unavailable(ctx.req, s, "cannot read the store: " + head.err().message);
  }
  co_return start;
}

}  // namespace

// GET /api/feed: history, then live events, with no gap and no duplicate
// between them. The handler only carries out the plan of where the stream
// starts (http/feed_plan.h); an SSE session then owns the connection, and the
// hub feeds it, reading whatever the ring no longer holds from the store at
// the pace the client drains it (broadcast/hub.h).
handler feed_handler(services& s) {
  return [&s](request_context& ctx) -> asio::awaitable<response> {
    auto prepared = co_await prepare_stream(s, ctx);
    if (auto* refused = std::get_if<response>(&prepared)) co_return std::move(*refused);
    ctx.stream_taken = true;  // from here on the session owns the connection
    sse_session::start(std::move(ctx.socket), s.fanout.hub_at(ctx.loop), std::move(std::get<stream_start>(prepared)));
    co_return response{};
  };
}

// HEAD /api/feed: GET's status and header fields, without the stream;
// Connection included, though this connection stays open either way.
handler feed_head_handler(services& s) {
  return [&s](request_context& ctx) -> asio::awaitable<response> {
    auto prepared = co_await prepare_stream(s, ctx);
    if (auto* refused = std::get_if<response>(&prepared)) co_return std::move(*refused);
    auto res = event_stream_head(ctx.req);
    res.set(beast::http::field::connection, ctx.keep_alive ? "keep-alive" : "close");
    co_return res;
  };
}

}  // namespace feed::http
