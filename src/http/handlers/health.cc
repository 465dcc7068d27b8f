#include <boost/json.hpp>

#include "http/handlers/handlers.h"
#include "http/response.h"

namespace feed::http {

// Liveness only: answers while the process serves HTTP, whatever the backends
// do (that is /api/ready's job), exactly as the reference does.
handler health_handler() {
  return [](request_context& ctx) -> asio::awaitable<response> {
    co_return json_response(ctx.req, status::ok, boost::json::object{{"status", "ok"}});
  };
}

void add_routes(router& r, services& s) {
  r.add(verb::get, "/api/health", health_handler());
  r.add(verb::get, "/api/ready", ready_handler(s));
  r.add(verb::post, "/api/messages", post_message_handler(s));
  r.add(verb::get, "/api/messages", list_messages_handler(s));
  r.add(verb::get, "/api/feed", feed_handler(s), route_kind::streaming);
  r.add(verb::get, "/api/openapi.yaml", openapi_handler());
  r.add(verb::get, "/metrics", metrics_handler(s.registry));
  add_page_routes(r);
}

}  // namespace feed::http
