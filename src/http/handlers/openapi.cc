#include <boost/beast/http/field.hpp>

#include "http/handlers/handlers.h"

namespace feed::http {

// docs/openapi.yaml, embedded at build time (see cmake/embed_text.cmake).
extern const std::string_view kOpenApiYaml;

handler openapi_handler() {
  return [](request_context& ctx) -> asio::awaitable<response> {
    response res{status::ok, ctx.req.version()};
    res.set(beast::http::field::content_type, "application/yaml");
    res.body() = std::string(kOpenApiYaml);
    co_return res;
  };
}

}  // namespace feed::http
