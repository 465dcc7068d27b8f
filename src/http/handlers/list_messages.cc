#include <boost/json.hpp>

#include "http/blocking.h"
#include "http/handlers/handlers.h"
#include "http/query.h"
#include "http/response.h"
#include "model/post_request.h"

namespace feed::http {

result<read_query> list_query(boost::urls::url_view url, const api_options& opts) {
  read_query q;
  q.newest_first = true;
  q.limit = opts.list_default;
  if (auto once = given_once(url, {"limit", "before", "user_id"}); !once) return once.err();
  if (auto v = query_param(url, "limit")) {
    auto n = parse_integer(*v, "limit", 1, static_cast<std::int64_t>(opts.list_max));
    if (!n) return n.err();
    q.limit = static_cast<std::size_t>(*n);
  }
  if (auto v = query_param(url, "before")) {
    auto n = parse_integer(*v, "before", 1, INT64_MAX);
    if (!n) return n.err();
    q.up_to = seq_t{*n - 1};
  }
  if (auto v = query_param(url, "user_id")) {
    if (auto problem = check_user_id(*v, opts.limits.max_user_id_bytes); !problem.empty())
      return error(errc::invalid_input, std::move(problem));
    q.user_id = std::move(*v);
  }
  return q;
}

// GET /api/messages?limit=&before=&user_id=: newest first, one page, and the
// cursor for the next page (null on the last page).
handler list_messages_handler(services& s) {
  return [&s](request_context& ctx) -> asio::awaitable<response> {
    auto q = list_query(ctx.url, s.opts);
    if (!q) co_return error_response(ctx.req, status::bad_request, q.err().message);
    // One row more than the page: whether an older one exists decides the
    // cursor. (An author's messages have no seq known to be their first,
    // so a full last page could not tell.)
    auto read = [&s, q = *q]() mutable {
      ++q.limit;
      return s.db.read(q);
    };
    auto rows = co_await run_blocking(s.blocking, std::move(read), s.opts.store_wait, "the store");
    if (!rows) co_return error_response(ctx.req, status::service_unavailable, rows.err().message);
    const bool more = rows->size() > q->limit;
    if (more) rows->resize(q->limit);

    boost::json::array items;
    items.reserve(rows->size());
    for (const auto& m : *rows) items.push_back(to_json_object(m, /*with_seq=*/true));
    boost::json::value next = nullptr;
    if (more) next = rows->back().seq.value();
    co_return json_response(ctx.req, status::ok,
                            boost::json::object{{"messages", std::move(items)}, {"next_before", next}});
  };
}

}  // namespace feed::http
