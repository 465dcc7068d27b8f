#include "http/handlers/handlers.h"

namespace feed::http {

void add_routes(router& r, services& s) {
  r.add(verb::get, "/api/health", health_handler());
  r.add(verb::get, "/api/ready", ready_handler(s));
  r.add(verb::post, "/api/messages", post_message_handler(s));
  r.add(verb::get, "/api/messages", list_messages_handler(s));
  r.add(verb::get, "/api/feed", feed_handler(s), route_kind::streaming);
  r.add(verb::head, "/api/feed", feed_head_handler(s));
  r.add(verb::get, "/api/openapi.yaml", openapi_handler());
  r.add(verb::get, "/metrics", metrics_handler(s.registry));
  add_page_routes(r);
}

}  // namespace feed::http
