#include "http/server.h"

#include <sys/socket.h>
#include <sys/time.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>

#include "http/response.h"

namespace feed::http {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

// A head that promises a body, and the first bytes of it only: the server
// counts the request in flight and waits for the rest.
constexpr std::string_view kStalledPost =
    "POST /api/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    "Content-Length: 40\r\n\r\n{\"u";

template <class Pred>
bool eventually(Pred done, std::chrono::milliseconds bound = 5s) {
  const auto until = std::chrono::steady_clock::now() + bound;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

// One event loop on its own thread, a server on it, and a client connected
// to it.
struct served : ::testing::Test {
  void start(server_options opts) {
    opts.port = 0;
    srv = std::make_unique<server>(std::vector<asio::io_context*>{loop.get()}, opts, routes);
    ASSERT_TRUE(srv->listen());
    srv->start();
    runner = std::thread([l = loop.get()] { l->run(); });
    client.connect({asio::ip::make_address("127.0.0.1"), srv->port()});
    // Blocking reads give up after 10 s, so a server that never answers
    // fails a test instead of hanging it.
    const timeval bound{.tv_sec = 10, .tv_usec = 0};
    ::setsockopt(client.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &bound, sizeof bound);
  }
  void TearDown() override {
    if (runner.joinable()) {
      loop->stop();
      runner.join();
    }
  }

  std::unique_ptr<asio::io_context> loop = std::make_unique<asio::io_context>(1);
  router routes;
  std::unique_ptr<server> srv;
  std::thread runner;
  asio::io_context client_ioc;
  tcp::socket client{client_ioc};
};

// The client has sent kStalledPost.
struct stalled_request : served {
  void SetUp() override {
    start({});
    asio::write(client, asio::buffer(kStalledPost));
    ASSERT_TRUE(eventually([&] { return srv->in_flight() == 1; }));
  }
};

TEST_F(stalled_request, CloseAllEndsIt) {
  srv->stop_accepting();
  srv->close_all();
  EXPECT_TRUE(eventually([&] { return srv->in_flight() == 0 && srv->connections() == 0; }));
}

// The loop stops with the request's coroutine suspended (a stop at the
// shutdown deadline), and its io_context outlives the server: destroying it
// destroys that frame, which must not reach into the destroyed server.
// AddressSanitizer tells.
TEST_F(stalled_request, ItsFrameMayOutliveTheServer) {
  loop->stop();
  runner.join();
  EXPECT_EQ(srv->in_flight(), 1u);
  EXPECT_EQ(srv->connections(), 1u);
  srv.reset();
  loop.reset();
}

// Deadlines are checked by each loop's sweep, not by a timer per socket
// operation: a wait past its deadline ends within a sweep interval, a
// handler's own time is not bounded by them, and an idle loop keeps no
// sweep pending.
struct deadlines : served {
  using clock = std::chrono::steady_clock;

  void SetUp() override {
    // A handler slower than the header timeout: its time is its own.
    routes.add(verb::get, "/slow", [](request_context& ctx) -> asio::awaitable<response> {
      asio::steady_timer t(co_await asio::this_coro::executor, 1500ms);
      co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
      co_return error_response(ctx.req, status::ok, "slow but answered");
    });
  }
  // Everything the server sends until it closes (or 10 s pass).
  std::string read_to_close() {
    std::string got;
    boost::system::error_code ec;
    asio::read(client, asio::dynamic_buffer(got), ec);
    return got;
  }
};

TEST_F(deadlines, AnUnfinishedHeaderIsAnswered408AndClosedAtTheHeaderTimeout) {
  start({.header_timeout = 1s});
  const auto t0 = clock::now();
  asio::write(client, asio::buffer(std::string_view("GET /slow HTTP/1.1\r\nHost: x\r\n")));
  const auto got = read_to_close();
  EXPECT_TRUE(got.starts_with("HTTP/1.1 408 Request Timeout\r\n")) << got;
  EXPECT_NE(got.find("Connection: close\r\n"), std::string::npos) << got;
  EXPECT_TRUE(got.ends_with("{\"error\":\"the request was not received within the header timeout\"}\n")) << got;
  const auto took = clock::now() - t0;
  EXPECT_GE(took, 950ms);
  EXPECT_LT(took, 2s);
  EXPECT_TRUE(eventually([&] { return srv->connections() == 0; }));
}

TEST_F(deadlines, AConnectionThatSendsNothingIsClosedUnansweredAtTheHeaderTimeout) {
  start({.header_timeout = 1s});
  const auto t0 = clock::now();
  EXPECT_EQ(read_to_close(), "");
  const auto took = clock::now() - t0;
  EXPECT_GE(took, 950ms);
  EXPECT_LT(took, 2s);
}

TEST_F(deadlines, AnIdleKeepAliveConnectionIsClosedAtTheIdleTimeout) {
  start({.header_timeout = 3s, .idle_timeout = 1s});
  asio::write(client, asio::buffer(std::string_view("GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n")));
  std::string got(4096, '\0');
  got.resize(client.read_some(asio::buffer(got)));
  EXPECT_TRUE(got.starts_with("HTTP/1.1 404")) << got;
  const auto t0 = clock::now();
  EXPECT_EQ(read_to_close(), "");
  const auto took = clock::now() - t0;
  EXPECT_GE(took, 950ms);
  EXPECT_LT(took, 2500ms);  // well before the 3 s header timeout
}

// From the first byte of a kept-alive connection's next request, the
// header timeout applies, not what is left of the idle timeout.
TEST_F(deadlines, AKeptAliveConnectionsNextRequestHasTheHeaderTimeout) {
  start({.header_timeout = 1s, .idle_timeout = 5s});
  asio::write(client, asio::buffer(std::string_view("GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n")));
  std::string got(4096, '\0');
  got.resize(client.read_some(asio::buffer(got)));
  EXPECT_TRUE(got.starts_with("HTTP/1.1 404")) << got;
  std::this_thread::sleep_for(300ms);
  const auto t0 = clock::now();
  asio::write(client, asio::buffer(std::string_view("GET /nowhere HTTP/1.1\r\n")));  // never finished
  EXPECT_TRUE(read_to_close().starts_with("HTTP/1.1 408 Request Timeout\r\n"));
  const auto took = clock::now() - t0;
  EXPECT_GE(took, 950ms);
  EXPECT_LT(took, 2s);  // not the 4.7 s left of the idle timeout
}

// A request that begins just before the idle deadline gets the header
// timeout in full, and is answered.
TEST_F(deadlines, ARequestBegunJustBeforeTheIdleDeadlineIsAnswered) {
  start({.header_timeout = 2s, .idle_timeout = 1s});
  asio::write(client, asio::buffer(std::string_view("GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n")));
  std::string got(4096, '\0');
  got.resize(client.read_some(asio::buffer(got)));
  EXPECT_TRUE(got.starts_with("HTTP/1.1 404")) << got;
  std::this_thread::sleep_for(700ms);
  asio::write(client, asio::buffer(std::string_view("GET /nowhere HTTP/1.1\r\n")));
  std::this_thread::sleep_for(700ms);  // past the idle deadline
  asio::write(client, asio::buffer(std::string_view("Host: x\r\nConnection: close\r\n\r\n")));
  EXPECT_TRUE(read_to_close().starts_with("HTTP/1.1 404"));
}

TEST_F(deadlines, AHandlerSlowerThanTheHeaderTimeoutStillAnswers) {
  start({.header_timeout = 1s, .idle_timeout = 1s});
  asio::write(client, asio::buffer(std::string_view("GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")));
  const auto got = read_to_close();
  EXPECT_TRUE(got.starts_with("HTTP/1.1 200")) << got;
  EXPECT_NE(got.find("slow but answered"), std::string::npos) << got;
}

// With no connection left and the acceptor closed, nothing keeps the loop
// running: run() returns without close_all().
TEST_F(deadlines, NoSweepIsLeftPendingOnAnIdleLoop) {
  start({});
  asio::write(client, asio::buffer(std::string_view("GET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")));
  EXPECT_TRUE(read_to_close().starts_with("HTTP/1.1 404"));
  client.close();
  ASSERT_TRUE(eventually([&] { return srv->connections() == 0; }));
  srv->stop_accepting();
  EXPECT_TRUE(eventually([&] { return loop->stopped(); }, 2s));
}

// A handler that throws, before or after it first waits, costs its request
// a 500 (no body for HEAD), not the connection: the next request on it, a
// router answer and a handler's, are served in order.
struct failing_handler : served {
  void SetUp() override {
    routes.add(verb::get, "/throws-at-once", [](request_context&) -> asio::awaitable<response> {
      throw std::runtime_error("at once");
      co_return response{};
    });
    routes.add(verb::get, "/throws-later", [](request_context& ctx) -> asio::awaitable<response> {
      asio::steady_timer t(co_await asio::this_coro::executor, 1ms);
      co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
      if (ctx.req.method() != verb::put) throw std::runtime_error("later");
      co_return response{};
    });
    routes.add(verb::get, "/fine", [](request_context& ctx) -> asio::awaitable<response> {
      co_return error_response(ctx.req, status::ok, "fine");
    });
    start({});
  }
};

TEST_F(failing_handler, AnswersFiveHundredAndKeepsTheConnection) {
  const std::string requests =
      "GET /throws-at-once HTTP/1.1\r\nHost: x\r\n\r\n"
      "HEAD /throws-later HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /throws-later HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /fine HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  asio::write(client, asio::buffer(requests));
  std::string got;
  boost::system::error_code ec;
  asio::read(client, asio::dynamic_buffer(got), ec);
  const std::string error_body = "{\"error\":\"internal error\"}\n";
  std::vector<std::string> statuses;
  for (auto at = got.find("HTTP/1.1 "); at != std::string::npos; at = got.find("HTTP/1.1 ", at + 1))
    statuses.push_back(got.substr(at + 9, 3));
  EXPECT_EQ(statuses, (std::vector<std::string>{"500", "500", "404", "500", "200"})) << got;
  // Two GETs carry the error body; the HEAD only its length.
  std::size_t bodies = 0;
  for (auto at = got.find(error_body); at != std::string::npos; at = got.find(error_body, at + 1)) ++bodies;
  EXPECT_EQ(bodies, 2u) << got;
  EXPECT_NE(got.find("\"fine\""), std::string::npos) << got;
}

}  // namespace
}  // namespace feed::http
