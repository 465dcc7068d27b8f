#include "broadcast/hub.h"

#include <numeric>

#include <boost/asio/connect.hpp>
#include <boost/asio/read.hpp>
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "broadcast/subscriber.h"

namespace feed {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

frame_ptr event(std::int64_t seq, std::string user = "u", std::size_t pad = 0) {
  return std::make_shared<const frame>(
      frame{fmt::format("id: {}\ndata: {}{}\n\n", seq, user, std::string(pad, 'x')), user, seq_t{seq}});
}

// A loopback connection: `server` goes to the hub, the test reads `client`.
struct conn {
  tcp::socket server, client;
};

conn connect_pair(asio::io_context& ioc) {
  tcp::acceptor acc(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  tcp::socket client(ioc), server(ioc);
  client.connect(acc.local_endpoint());
  acc.accept(server);
  return {std::move(server), std::move(client)};
}

// Reads whatever is available without blocking.
std::string drain(tcp::socket& s) {
  std::string out;
  s.non_blocking(true);
  char buf[65536];
  for (;;) {
    boost::system::error_code ec;
    const auto n = s.read_some(asio::buffer(buf), ec);
    if (ec) break;
    out.append(buf, n);
  }
  return out;
}

std::vector<std::int64_t> ids(const std::string& text) {
  std::vector<std::int64_t> out;
  for (std::size_t p = text.find("id: "); p != std::string::npos; p = text.find("id: ", p + 1))
    out.push_back(std::stoll(text.substr(p + 4)));
  return out;
}

std::shared_ptr<subscriber> attach(hub& h, tcp::socket& s, seq_t from = seq_t{0},
                                   std::optional<std::string> user = std::nullopt) {
  auto sub = h.reserve(from, from, std::move(user));
  EXPECT_EQ(h.attach(sub, s), hub::attach_result::attached);
  return sub;
}

TEST(Hub, DeliversEveryFrameInOrderToEverySubscriber) {
  asio::io_context ioc;
  hub h(ioc, seq_t{0}, {});
  auto a = connect_pair(ioc), b = connect_pair(ioc);
  attach(h, a.server);
  attach(h, b.server);
  for (int i = 1; i <= 100; ++i) h.post({event(i)});
  ioc.run_for(std::chrono::milliseconds(100));
  std::vector<std::int64_t> want(100);
  std::iota(want.begin(), want.end(), 1);
  EXPECT_EQ(ids(drain(a.client)), want);
  EXPECT_EQ(ids(drain(b.client)), want);
  EXPECT_EQ(h.stats().frames_sent, 200u);
  // Many frames leave in one gather write: far fewer writes than frames.
  EXPECT_LT(h.stats().writes, 200u);
}

TEST(Hub, FiltersByAuthor) {
  asio::io_context ioc;
  hub h(ioc, seq_t{0}, {});
  auto a = connect_pair(ioc);
  attach(h, a.server, seq_t{0}, "bob");
  h.post({event(1, "alice"), event(2, "bob"), event(3, "alice"), event(4, "bob")});
  ioc.run_for(std::chrono::milliseconds(50));
  EXPECT_EQ(ids(drain(a.client)), (std::vector<std::int64_t>{2, 4}));
}

TEST(Hub, ReservedPositionKeepsWhatArrivesBeforeAttach) {
  asio::io_context ioc;
  hub h(ioc, seq_t{0}, {});
  h.post({event(1), event(2)});
  ioc.run_for(std::chrono::milliseconds(10));
  ioc.restart();
  auto sub = h.reserve(h.last_seq(), seq_t{0}, std::nullopt);  // "history" covers 1..2
  h.post({event(3), event(4)});                                // published while history is sent
  ioc.run_for(std::chrono::milliseconds(10));
  ioc.restart();
  auto a = connect_pair(ioc);
  ASSERT_EQ(h.attach(sub, a.server), hub::attach_result::attached);
  ioc.run_for(std::chrono::milliseconds(20));
  EXPECT_EQ(ids(drain(a.client)), (std::vector<std::int64_t>{3, 4}));
}

TEST(Hub, ResumesFromTheRingWhenItCoversTheGap) {
  asio::io_context ioc;
  hub h(ioc, seq_t{5}, {.ring_frames = 4});
  EXPECT_TRUE(h.covers(seq_t{5}));
  EXPECT_FALSE(h.covers(seq_t{4}));
  h.post({event(6), event(7), event(8), event(9), event(10)});
  ioc.run_for(std::chrono::milliseconds(10));
  ioc.restart();
  EXPECT_FALSE(h.covers(seq_t{5}));  // 6 left the ring (it keeps 4)
  EXPECT_TRUE(h.covers(seq_t{6}));
  auto a = connect_pair(ioc);
  attach(h, a.server, seq_t{8});
  ioc.run_for(std::chrono::milliseconds(20));
  EXPECT_EQ(ids(drain(a.client)), (std::vector<std::int64_t>{9, 10}));
}

TEST(Hub, ReportsFellBehindWhenTheRingOverflowsBeforeAttach) {
  asio::io_context ioc;
  hub h(ioc, seq_t{0}, {.ring_frames = 2});
  auto sub = h.reserve(seq_t{0}, seq_t{0}, std::nullopt);
  h.post({event(1), event(2), event(3)});
  ioc.run_for(std::chrono::milliseconds(10));
  ioc.restart();
  auto a = connect_pair(ioc);
  EXPECT_EQ(h.attach(sub, a.server), hub::attach_result::fell_behind);
  EXPECT_TRUE(a.server.is_open());  // the caller keeps the socket
}

TEST(Hub, DisconnectsASlowClientWithoutStallingOthers) {
  asio::io_context ioc;
  hub h(ioc, seq_t{0}, {.client_buffer_bytes = 256 * 1024});
  auto slow = connect_pair(ioc), fast = connect_pair(ioc);
  slow.client.set_option(asio::socket_base::receive_buffer_size(4096));
  slow.server.set_option(asio::socket_base::send_buffer_size(4096));
  attach(h, slow.server);
  attach(h, fast.server);
  std::string got;
  constexpr int kEvents = 2000;  // ~2 MB, far past the slow client's buffer
  for (int i = 1; i <= kEvents; ++i) {
    h.post({event(i, "u", 1000)});
    if (i % 50 == 0) {
      ioc.run_for(std::chrono::milliseconds(2));
      ioc.restart();
      got += drain(fast.client);
    }
  }
  for (int i = 0; i < 50 && ids(got).size() < kEvents; ++i) {
    ioc.run_for(std::chrono::milliseconds(5));
    ioc.restart();
    got += drain(fast.client);
  }
  std::vector<std::int64_t> want(kEvents);
  std::iota(want.begin(), want.end(), 1);
  EXPECT_EQ(ids(got), want);
  EXPECT_EQ(h.stats().dropped_slow, 1u);
  EXPECT_EQ(h.subscribers(), 1u);
}

TEST(Hub, NoticesAClientThatHungUp) {
  asio::io_context ioc;
  hub h(ioc, seq_t{0}, {});
  auto a = connect_pair(ioc);
  attach(h, a.server);
  EXPECT_EQ(h.subscribers(), 1u);
  a.client.close();
  ioc.run_for(std::chrono::milliseconds(50));
  EXPECT_EQ(h.subscribers(), 0u);
}

TEST(Hub, CloseAllEndsStreamsAndRefusesNewOnes) {
  asio::io_context ioc;
  hub h(ioc, seq_t{0}, {});
  auto a = connect_pair(ioc), b = connect_pair(ioc);
  attach(h, a.server);
  h.post({event(1)});
  ioc.run_for(std::chrono::milliseconds(10));
  ioc.restart();
  h.close_all();
  EXPECT_EQ(h.subscribers(), 0u);
  auto sub = h.reserve(seq_t{1}, seq_t{1}, std::nullopt);
  EXPECT_EQ(h.attach(sub, b.server), hub::attach_result::closed);
  a.client.non_blocking(false);
  std::string all;
  char buf[1024];
  boost::system::error_code ec;
  while (!ec) all.append(buf, a.client.read_some(asio::buffer(buf), ec));
  EXPECT_EQ(ec, asio::error::eof);
  EXPECT_EQ(ids(all), (std::vector<std::int64_t>{1}));
}

}  // namespace
}  // namespace feed

namespace feed {
namespace {

TEST(Hub, KeepsDeliveringAfterHeartbeats) {
  asio::io_context ioc;
  hub h(ioc, seq_t{0}, {.heartbeat = std::chrono::milliseconds(20)});
  auto a = connect_pair(ioc);
  attach(h, a.server);
  h.post({event(1)});
  ioc.run_for(std::chrono::milliseconds(70));
  ioc.restart();
  h.post({event(2), event(3)});
  ioc.run_for(std::chrono::milliseconds(30));
  const auto got = drain(a.client);
  EXPECT_EQ(ids(got), (std::vector<std::int64_t>{1, 2, 3}));
  EXPECT_NE(got.find(": keep-alive\n\n"), std::string::npos);
}

}  // namespace
}  // namespace feed
