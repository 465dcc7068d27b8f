#include "http/server.h"

#include <memory>
#include <thread>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>

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

// One event loop on its own thread, a server on it, and a client that has
// sent kStalledPost.
struct stalled_request : ::testing::Test {
  void SetUp() override {
    srv = std::make_unique<server>(std::vector<asio::io_context*>{loop.get()}, server_options{.port = 0}, routes);
    ASSERT_TRUE(srv->listen());
    srv->start();
    runner = std::thread([l = loop.get()] { l->run(); });
    client.connect({asio::ip::make_address("127.0.0.1"), srv->port()});
    asio::write(client, asio::buffer(kStalledPost));
    ASSERT_TRUE(eventually([&] { return srv->in_flight() == 1; }));
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

}  // namespace
}  // namespace feed::http
