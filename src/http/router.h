// Maps (method, path) to a handler; answers 404, 405, 501, OPTIONS and HEAD
// itself. Built once at start-up, read-only afterwards (safe from any thread).
#pragma once

#include <map>
#include <set>
#include <string>
#include <variant>

#include "http/types.h"

namespace feed::http {

// A streaming GET handler takes the socket over, so HEAD cannot run it: the
// router answers HEAD on such a route with the stream's head instead.
enum class route_kind { plain, streaming };

class router {
 public:
  void add(verb method, std::string path, handler h, route_kind kind = route_kind::plain);

  // What the router answers itself (404, 405, OPTIONS, the head of a
  // stream), complete; or the handler to run, whose answer then goes
  // through fit_to_method. The server does the two steps in its own
  // coroutine: one frame and one move of the response fewer per request.
  using decision = std::variant<response, const handler*>;
  decision decide(const request_context& ctx) const;
  // A HEAD request's answer without its body (and with the body's length).
  static void fit_to_method(const request& req, response& res);

  // decide, the handler if any, and fit_to_method.
  asio::awaitable<response> dispatch(request_context& ctx) const;

  // The Allow value for a path ("GET, HEAD, OPTIONS"); for "*", every method
  // the server serves. Empty for an unknown path.
  std::string allow(std::string_view path) const;

 private:
  struct route {
    std::map<verb, handler> handlers;
    bool streaming = false;
  };

  const handler* find(const route& r, verb method) const;
  response method_not_allowed(const request_context& ctx, std::string_view path) const;

  std::map<std::string, route, std::less<>> routes_;
};

}  // namespace feed::http
