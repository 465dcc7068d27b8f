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

}  // namespace feed::http
