#include <boost/beast/http/field.hpp>

#include "http/handlers/handlers.h"

namespace feed::http {

handler metrics_handler(const metrics& m) {
  return [&m](request_context& ctx) -> asio::awaitable<response> {
    response res{status::ok, ctx.req.version()};
    res.set(beast::http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
    res.body() = m.render();
    co_return res;
  };
}

}  // namespace feed::http
