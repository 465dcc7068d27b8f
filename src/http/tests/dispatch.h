// Runs one request through a router as the server does (target parsed,
// context built, dispatch awaited), for the tests of routing and handlers.
#pragma once

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "http/request_checks.h"
#include "http/router.h"

namespace feed::http::testing {

struct routed {
  response dispatch(const request& req) {
    auto target = request_target::parse(req.target());
    EXPECT_TRUE(target) << req.target();
    request_context ctx{req, target.value_or(request_target{}), socket, 0};
    response out;
    asio::co_spawn(ioc, [&]() -> asio::awaitable<void> { out = co_await routes.dispatch(ctx); }, asio::detached);
    ioc.run();
    ioc.restart();
    return out;
  }

  asio::io_context ioc;
  asio::ip::tcp::socket socket{ioc};
  router routes;
};

}  // namespace feed::http::testing
