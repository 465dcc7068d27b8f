#include <boost/json.hpp>

#include "http/blocking.h"
#include "http/handlers/handlers.h"
#include "http/response.h"

namespace feed::http {

// Readiness: 200 only when the store and the queue answer and the store's
// last write did not fail (a full disk still answers reads); otherwise 503
// and which of them is down, so a load balancer can route around this
// instance.
handler ready_handler(services& s) {
  return [&s](request_context& ctx) -> asio::awaitable<response> {
    auto check = [&s] {
      boost::json::object p;
      // The write first: it needs no round trip, and a store whose write is
      // stuck may not answer a ping soon either.
      if (auto w = s.db.write_status(s.opts.publish_timeout); !w) p["store"] = w.err().message;
      else if (auto r = s.db.ping(); !r) p["store"] = r.err().message;
      if (auto r = s.queue.ready(); !r) p["queue"] = r.err().message;
      return p;
    };
    auto problems = co_await run_blocking(s.blocking, std::move(check));
    if (problems.empty()) co_return json_response(ctx.req, status::ok, boost::json::object{{"status", "ready"}});
    co_return json_response(ctx.req, status::service_unavailable,
                            boost::json::object{{"status", "unavailable"}, {"problems", std::move(problems)}});
  };
}

}  // namespace feed::http
