#include "http/router.h"

#include <boost/beast/http/field.hpp>
#include <fmt/format.h>

#include "http/response.h"

namespace feed::http {
namespace {

namespace bhttp = beast::http;

// Every GET route also answers HEAD, and every route OPTIONS.
void add_implied(std::set<verb>& methods) {
  if (methods.contains(verb::get)) methods.insert(verb::head);
  methods.insert(verb::options);
}

std::string join(const std::set<verb>& methods) {
  std::string out;
  for (const verb m : methods) {
    if (!out.empty()) out += ", ";
    out += std::string(bhttp::to_string(m));
  }
  return out;
}

// Also a CORS preflight answer: browsers send OPTIONS before a cross-origin
// POST with a JSON body, and before any request carrying our own headers.
response options_response(const request& req, const std::string& allow) {
  response res{status::no_content, req.version()};
  res.set(bhttp::field::allow, allow);
  res.set(bhttp::field::access_control_allow_origin, "*");
  res.set(bhttp::field::access_control_allow_methods, allow);
  res.set(bhttp::field::access_control_allow_headers, "Content-Type, Idempotency-Key, Last-Event-ID");
  res.set(bhttp::field::access_control_max_age, "86400");
  res.set(bhttp::field::server, "feed-api");
  return res;
}

response for_method(const request& req, response res) {
  router::fit_to_method(req, res);
  return res;
}

// The methods of RFC 9110 §9 and PATCH (RFC 5789). Beast also parses
// WebDAV's and others, which this server implements nowhere.
bool is_http_method(verb m) {
  switch (m) {
    case verb::get: case verb::head: case verb::post: case verb::put: case verb::delete_:
    case verb::connect: case verb::options: case verb::trace: case verb::patch:
      return true;
    default:
      return false;
  }
}

}  // namespace

void router::fit_to_method(const request& req, response& res) {
  if (req.method() == verb::head) strip_body_for_head(res);
}

void router::add(verb method, std::string path, handler h, route_kind kind) {
  auto& r = routes_[std::move(path)];
  r.handlers[method] = std::move(h);
  if (kind == route_kind::streaming) r.streaming = true;
}

std::string router::allow(std::string_view path) const {
  std::set<verb> methods;
  for (const auto& [p, r] : routes_)
    if (path == "*" || p == path)
      for (const auto& [m, _] : r.handlers) methods.insert(m);
  if (methods.empty()) return {};
  add_implied(methods);
  return join(methods);
}

const handler* router::find(const route& r, verb method) const {
  auto it = r.handlers.find(method);
  if (it == r.handlers.end() && method == verb::head) it = r.handlers.find(verb::get);
  return it == r.handlers.end() ? nullptr : &it->second;
}

response router::method_not_allowed(const request_context& ctx, std::string_view path) const {
  const std::string allowed = allow(path);
  auto res = error_response(ctx.req, status::method_not_allowed,
                            fmt::format("method {} is not allowed on {}; allowed: {}",
                                        std::string_view(ctx.req.method_string()), path, allowed));
  res.set(bhttp::field::allow, allowed);
  return res;
}

router::decision router::decide(const request_context& ctx) const {
  const verb method = ctx.req.method();
  // RFC 9110 §9.1: a method the server does not recognize or implement is
  // 501 on any resource; 405 is for one it implements, but not there.
  if (!is_http_method(method))
    return error_response(ctx.req, status::not_implemented,
                          fmt::format("method {} is not implemented by this server; it serves {}",
                                      std::string_view(ctx.req.method_string()), allow("*")));
  if (ctx.req.target() == "*") return options_response(ctx.req, allow("*"));
  const std::string_view path = ctx.url.path();
  auto it = routes_.find(path);
  if (it == routes_.end())
    return for_method(ctx.req, error_response(ctx.req, status::not_found, fmt::format("no such endpoint: {}", path)));
  const route& r = it->second;
  if (method == verb::options) return options_response(ctx.req, allow(path));
  if (method == verb::head && r.streaming && !r.handlers.contains(verb::head)) return event_stream_head(ctx.req);
  if (const handler* h = find(r, method)) return h;
  return for_method(ctx.req, method_not_allowed(ctx, path));
}

asio::awaitable<response> router::dispatch(request_context& ctx) const {
  auto d = decide(ctx);
  if (auto* answer = std::get_if<response>(&d)) co_return std::move(*answer);
  response res = co_await (*std::get<const handler*>(d))(ctx);
  fit_to_method(ctx.req, res);
  co_return res;
}

}  // namespace feed::http
