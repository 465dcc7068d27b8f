#include "http/router.h"

#include <boost/beast/http/field.hpp>
#include <fmt/format.h>

#include "http/response.h"

namespace feed::http {

void router::add(verb method, std::string path, handler h) { routes_[std::move(path)][method] = std::move(h); }

asio::awaitable<response> router::dispatch(request_context& ctx) const {
  const auto path = ctx.url.path();
  auto it = routes_.find(std::string_view(path));
  if (it == routes_.end())
    co_return error_response(ctx.req, status::not_found, fmt::format("no such endpoint: {}", path));
  auto h = it->second.find(ctx.req.method());
  if (h == it->second.end()) {
    std::string allowed;
    for (const auto& [m, _] : it->second) {
      if (!allowed.empty()) allowed += ", ";
      allowed += std::string(beast::http::to_string(m));
    }
    auto res = error_response(ctx.req, status::method_not_allowed,
                              fmt::format("method {} is not allowed on {}; allowed: {}",
                                          std::string(ctx.req.method_string()), path, allowed));
    res.set(beast::http::field::allow, allowed);
    co_return res;
  }
  co_return co_await h->second(ctx);
}

}  // namespace feed::http
