// Maps (method, path) to a handler; answers 404 and 405 itself.
// Built once at start-up, read-only afterwards (safe from any thread).
#pragma once

#include <map>
#include <string>

#include "http/types.h"

namespace feed::http {

class router {
 public:
  void add(verb method, std::string path, handler h);
  asio::awaitable<response> dispatch(request_context& ctx) const;

 private:
  std::map<std::string, std::map<verb, handler>, std::less<>> routes_;
};

}  // namespace feed::http
