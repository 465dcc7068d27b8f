#include "http/sse_session.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "base/testing/loopback_pair.h"

namespace feed::http {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

frame_ptr event(std::int64_t seq, std::size_t pad = 0) {
  return std::make_shared<const frame>(
      frame{fmt::format("id: {}\ndata: {}\n\n", seq, std::string(pad, 'x')), "u", seq_t{seq}});
}

std::size_t count_events(const std::string& text) {
  std::size_t n = 0;
  for (auto p = text.find("id: "); p != std::string::npos; p = text.find("id: ", p + 1)) ++n;
  return n;
}

// Runs the loop and reads what the client is sent until `done` or `bound`;
// eof tells whether the server ended the stream.
struct reader {
  std::string got;
  bool eof = false;
  template <class Done>
  void run(asio::io_context& ioc, tcp::socket& client, Done done, std::chrono::milliseconds bound = 5s) {
    client.non_blocking(true);
    const auto until = std::chrono::steady_clock::now() + bound;
    while (!done(*this) && !eof && std::chrono::steady_clock::now() < until) {
      ioc.run_for(2ms);
      ioc.restart();
      char buf[65536];
      for (;;) {
        boost::system::error_code ec;
        const auto n = client.read_some(asio::buffer(buf), ec);
        if (ec == asio::error::eof) eof = true;
        if (ec) break;
        got.append(buf, n);
      }
    }
  }
};

TEST(SseSession, SendsTheHeadThenTheEvents) {
  asio::io_context ioc;
  hub h(ioc, seq_t{0}, {});
  auto c = test_support::connect_loopback(ioc);
  sse_session::start(std::move(c.server), h, {seq_t{0}, std::nullopt, "HTTP/1.1 200 OK\r\n\r\n"});
  h.push({event(1), event(2)});
  reader r;
  r.run(ioc, c.client, [](const reader& r) { return count_events(r.got) == 2; });
  EXPECT_EQ(r.got, "HTTP/1.1 200 OK\r\n\r\nid: 1\ndata: \n\nid: 2\ndata: \n\n");
  EXPECT_EQ(h.open_streams(), 1u);
}

TEST(SseSession, AsksForTheHubsSendBuffer) {
  asio::io_context ioc;
  hub h(ioc, seq_t{0}, {.client_buffer_bytes = 64 * 1024});
  auto c = test_support::connect_loopback(ioc);
  const int fd = c.server.native_handle();
  sse_session::start(std::move(c.server), h, {seq_t{0}, std::nullopt, {}});
  int size = 0;
  socklen_t len = sizeof size;
  ASSERT_EQ(::getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, &len), 0);
  EXPECT_EQ(size, 2 * 64 * 1024);  // Linux doubles what is asked
}

TEST(SseSession, NoticesThePeerHangingUp) {
  asio::io_context ioc;
  hub h(ioc, seq_t{0}, {});
  auto c = test_support::connect_loopback(ioc);
  sse_session::start(std::move(c.server), h, {seq_t{0}, std::nullopt, {}});
  EXPECT_EQ(h.subscribers(), 1u);
  c.client.close();
  for (int i = 0; i < 50 && h.subscribers() > 0; ++i) {
    ioc.run_for(2ms);
    ioc.restart();
  }
  EXPECT_EQ(h.subscribers(), 0u);
  EXPECT_EQ(h.stats().closed_by_peer, 1u);
}

TEST(SseSession, WaitsForAPausedReaderAndDeliversEverything) {
  asio::io_context ioc;
  hub h(ioc, seq_t{0}, {});
  auto c = test_support::connect_loopback(ioc);
  c.client.set_option(asio::socket_base::receive_buffer_size(32 * 1024));
  sse_session::start(std::move(c.server), h, {seq_t{0}, std::nullopt, {}});
  constexpr int kEvents = 6000;  // ~1.3 MB: more than the socket buffers hold
  for (int i = 1; i <= kEvents; ++i) h.push({event(i, 200)});
  ioc.run_for(30ms);  // the client reads nothing meanwhile
  ioc.restart();
  EXPECT_LT(h.stats().frames_sent, static_cast<std::uint64_t>(kEvents));
  reader r;
  r.run(ioc, c.client, [](const reader& r) { return count_events(r.got) == kEvents; });
  EXPECT_EQ(count_events(r.got), static_cast<std::size_t>(kEvents));
  EXPECT_EQ(h.stats().dropped_slow, 0u);
}

TEST(SseSession, CloseAllSendsWhatFitsThenEndsTheStream) {
  asio::io_context ioc;
  hub h(ioc, seq_t{0}, {});
  auto c = test_support::connect_loopback(ioc);
  sse_session::start(std::move(c.server), h, {seq_t{0}, std::nullopt, {}});
  h.push({event(1)});
  ioc.run_for(5ms);
  ioc.restart();
  h.close_all();
  reader r;
  r.run(ioc, c.client, [](const reader&) { return false; });
  EXPECT_TRUE(r.eof);
  EXPECT_EQ(count_events(r.got), 1u);
}

TEST(SseSession, AHubThatIsShuttingDownEndsTheConnectionAtOnce) {
  asio::io_context ioc;
  hub h(ioc, seq_t{0}, {});
  h.close_all();
  auto c = test_support::connect_loopback(ioc);
  sse_session::start(std::move(c.server), h, {seq_t{0}, std::nullopt, "HEAD"});
  reader r;
  r.run(ioc, c.client, [](const reader&) { return false; }, 1s);
  EXPECT_TRUE(r.eof);
  EXPECT_EQ(r.got, "");
  EXPECT_EQ(h.open_streams(), 0u);
}

}  // namespace
}  // namespace feed::http
