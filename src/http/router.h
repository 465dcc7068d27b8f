// Maps (method, path) to a handler; answers 404, 405, OPTIONS and HEAD
// itself. Built once at start-up, read-only afterwards (safe from any thread).
#pragma once

#include <map>
#include <set>
#include <string>

#include "http/types.h"

namespace feed::http {

// A streaming GET handler takes the socket over, so HEAD cannot run it: the
// router answers HEAD on such a route with the stream's head instead.
enum class route_kind { plain, streaming };

class router {
 public:
  void add(verb method, std::string path, handler h, route_kind kind = route_kind::plain);
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
