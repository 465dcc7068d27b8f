#include "http/router.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/http/field.hpp>
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "http/request_checks.h"
#include "http/tests/dispatch.h"
#include "http/response.h"

namespace feed::http {
namespace {

namespace bhttp = beast::http;

class RouterTest : public ::testing::Test, protected testing::routed {
 protected:
  RouterTest() {
    routes.add(verb::get, "/api/health", [this](request_context& ctx) -> asio::awaitable<response> {
      ++health_calls;
      co_return json_response(ctx.req, status::ok, boost::json::object{{"status", "ok"}});
    });
    routes.add(verb::post, "/api/messages", [](request_context& ctx) -> asio::awaitable<response> {
      co_return json_response(ctx.req, status::accepted, boost::json::object{});
    });
    routes.add(verb::get, "/api/messages", [](request_context& ctx) -> asio::awaitable<response> {
      co_return json_response(ctx.req, status::ok, boost::json::object{{"messages", boost::json::array{}}});
    });
    routes.add(
        verb::get, "/api/feed",
        [this](request_context& ctx) -> asio::awaitable<response> {
          ++feed_calls;
          ctx.stream_taken = true;
          co_return response{};
        },
        route_kind::streaming);
    routes.add(verb::get, "/", [](request_context& ctx) -> asio::awaitable<response> {
      co_return json_response(ctx.req, status::ok, boost::json::object{{"root", true}});
    });
    routes.add(verb::post, "/api/post-only", [](request_context& ctx) -> asio::awaitable<response> {
      co_return json_response(ctx.req, status::accepted, boost::json::object{});
    });
  }

  response dispatch(verb method, std::string_view target) { return routed::dispatch(request{method, target, 11}); }

  int health_calls = 0;
  int feed_calls = 0;
};

TEST_F(RouterTest, HeadIsTheGetResponseWithoutItsBody) {
  const auto get = dispatch(verb::get, "/api/health");
  const auto head = dispatch(verb::head, "/api/health");
  EXPECT_EQ(health_calls, 2);
  EXPECT_EQ(head.result(), status::ok);
  EXPECT_EQ(head[bhttp::field::content_type], "application/json");
  EXPECT_EQ(head[bhttp::field::content_length], std::to_string(get.body().size()));
  EXPECT_TRUE(head.body().empty());
}

TEST_F(RouterTest, HeadOnAStreamingRouteAnswersItsHeadWithoutTheHandler) {
  const auto head = dispatch(verb::head, "/api/feed");
  EXPECT_EQ(feed_calls, 0);
  EXPECT_EQ(head.result(), status::ok);
  EXPECT_EQ(head[bhttp::field::content_type], "text/event-stream");
  EXPECT_EQ(head[bhttp::field::cache_control], "no-cache");
  EXPECT_EQ(head.count(bhttp::field::content_length), 0u);
  EXPECT_TRUE(head.body().empty());
}

TEST_F(RouterTest, HeadOfAnErrorHasNoBodyEither) {
  const auto head = dispatch(verb::head, "/api/nope");
  EXPECT_EQ(head.result(), status::not_found);
  EXPECT_TRUE(head.body().empty());
  EXPECT_NE(head[bhttp::field::content_length], "0");
}

TEST_F(RouterTest, OptionsListsMethodsAndAnswersCorsPreflight) {
  const auto res = dispatch(verb::options, "/api/messages");
  EXPECT_EQ(res.result(), status::no_content);
  EXPECT_EQ(res[bhttp::field::allow], "GET, HEAD, POST, OPTIONS");
  EXPECT_EQ(res[bhttp::field::access_control_allow_origin], "*");
  EXPECT_EQ(res[bhttp::field::access_control_allow_methods], "GET, HEAD, POST, OPTIONS");
  EXPECT_EQ(res[bhttp::field::access_control_allow_headers], "Content-Type, Idempotency-Key, Last-Event-ID");
  EXPECT_FALSE(res[bhttp::field::access_control_max_age].empty());
  EXPECT_TRUE(res.body().empty());
  EXPECT_EQ(dispatch(verb::options, "/api/feed")[bhttp::field::allow], "GET, HEAD, OPTIONS");
  EXPECT_EQ(feed_calls, 0);
}

TEST_F(RouterTest, OptionsAsteriskListsEveryMethod) {
  const auto res = dispatch(verb::options, "*");
  EXPECT_EQ(res.result(), status::no_content);
  EXPECT_EQ(res[bhttp::field::allow], "GET, HEAD, POST, OPTIONS");
}

TEST_F(RouterTest, MethodNotAllowedListsHeadAndOptions) {
  const auto res = dispatch(verb::delete_, "/api/health");
  EXPECT_EQ(res.result(), status::method_not_allowed);
  EXPECT_EQ(res[bhttp::field::allow], "GET, HEAD, OPTIONS");
  EXPECT_EQ(dispatch(verb::put, "/api/messages")[bhttp::field::allow], "GET, HEAD, POST, OPTIONS");
}

TEST_F(RouterTest, AbsoluteFormRoutesByPath) {
  EXPECT_EQ(dispatch(verb::get, "http://127.0.0.1:8090/api/health").result(), status::ok);
  EXPECT_EQ(dispatch(verb::get, "http://127.0.0.1:8090").body(), "{\"root\":true}\n");
}

TEST_F(RouterTest, NotFoundQuotesThePathAsValidUtf8) {
  const auto res = dispatch(verb::get, "/api/%FF");
  EXPECT_EQ(res.result(), status::not_found);
  EXPECT_NE(res.body().find("/api/\xEF\xBF\xBD"), std::string::npos);
}

TEST_F(RouterTest, MethodNotAllowedNamesTheMethodAndWhatIsAllowed) {
  const auto res = dispatch(verb::post, "/api/health");
  EXPECT_EQ(res.result(), status::method_not_allowed);
  EXPECT_EQ(res[bhttp::field::allow], "GET, HEAD, OPTIONS");
  EXPECT_EQ(res.body(), "{\"error\":\"method POST is not allowed on /api/health; allowed: GET, HEAD, OPTIONS\"}\n");
  EXPECT_EQ(health_calls, 0);
}

TEST_F(RouterTest, HeadOnARouteWithoutGetIs405WithAllowAndNoBody) {
  const auto res = dispatch(verb::head, "/api/post-only");
  EXPECT_EQ(res.result(), status::method_not_allowed);
  EXPECT_EQ(res[bhttp::field::allow], "POST, OPTIONS");
  EXPECT_TRUE(res.body().empty());
  EXPECT_NE(res[bhttp::field::content_length], "0");
  EXPECT_EQ(dispatch(verb::get, "/api/post-only")[bhttp::field::allow], "POST, OPTIONS");
}

TEST_F(RouterTest, AStreamingRouteRefusesOtherMethodsWithoutTakingTheStream) {
  const auto res = dispatch(verb::post, "/api/feed");
  EXPECT_EQ(res.result(), status::method_not_allowed);
  EXPECT_EQ(res[bhttp::field::allow], "GET, HEAD, OPTIONS");
  EXPECT_EQ(feed_calls, 0);
}

TEST_F(RouterTest, UnknownPathsAre404ForEveryMethod) {
  for (const verb m : {verb::get, verb::post, verb::put, verb::delete_, verb::options})
    for (std::string_view target : {"/api/nope", "/api/health/", "/API/health", "/api//health", "/api"}) {
      const auto res = dispatch(m, target);
      EXPECT_EQ(res.result(), status::not_found) << bhttp::to_string(m) << " " << target;
      EXPECT_EQ(res.count(bhttp::field::allow), 0u) << target;
    }
  EXPECT_EQ(health_calls, 0);
}

// RFC 9110 §9.1: 501 for a method not implemented anywhere (whatever the
// path), 405 for one implemented, but not on this path.
TEST_F(RouterTest, AMethodNoRouteImplementsIs501OnEveryPath) {
  for (std::string_view name : {"FOO", "get", "Post", "PROPFIND", "MKCOL", "BREW"}) {
    for (std::string_view target : {"/api/health", "/api/nope", "/"}) {
      request req{verb::unknown, target, 11};
      req.method_string(name);
      const auto res = routed::dispatch(std::move(req));
      EXPECT_EQ(res.result(), status::not_implemented) << name << " " << target;
      EXPECT_EQ(res.count(bhttp::field::allow), 0u) << name;
      EXPECT_EQ(res.body(), fmt::format("{{\"error\":\"method {} is not implemented by this server; it serves GET, "
                                        "HEAD, POST, OPTIONS\"}}\n",
                                        name))
          << target;
    }
  }
  for (const verb m : {verb::put, verb::delete_, verb::patch, verb::trace, verb::connect})
    EXPECT_EQ(dispatch(m, "/api/health").result(), status::method_not_allowed) << bhttp::to_string(m);
  EXPECT_EQ(health_calls, 0);
}

TEST_F(RouterTest, NotFoundNamesThePath) {
  EXPECT_EQ(dispatch(verb::get, "/api/nope?x=1").body(), "{\"error\":\"no such endpoint: /api/nope\"}\n");
}

TEST_F(RouterTest, TheQueryDoesNotChangeTheRoute) {
  EXPECT_EQ(dispatch(verb::get, "/api/health?x=1").result(), status::ok);
  EXPECT_EQ(dispatch(verb::head, "/api/health?x=1").result(), status::ok);
  EXPECT_EQ(dispatch(verb::delete_, "/api/health?x=1").result(), status::method_not_allowed);
  EXPECT_EQ(health_calls, 2);
}

TEST_F(RouterTest, AllowIsEmptyForAnUnknownPath) {
  EXPECT_EQ(routes.allow("/api/nope"), "");
  EXPECT_EQ(routes.allow("/api/messages"), "GET, HEAD, POST, OPTIONS");
}

}  // namespace
}  // namespace feed::http
