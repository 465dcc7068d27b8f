#include "broadcast/hub.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <functional>
#include <numeric>
#include <random>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "base/testing/loopback_pair.h"
#include "base/testing/property.h"

namespace feed {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// The hub sizes store pages so that this many bytes per row fit the client buffer.
constexpr std::size_t kMaxFrameBytes = 2048;

frame_ptr event(std::int64_t seq, std::string user = "u", std::size_t pad = 0) {
  return std::make_shared<const frame>(
      frame{fmt::format("id: {}\ndata: {}{}\n\n", seq, user, std::string(pad, 'x')), user, seq_t{seq}});
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

// The ids of the complete events in `text` (a read may end mid-event).
std::vector<std::int64_t> ids(const std::string& text) {
  std::vector<std::int64_t> out;
  const std::size_t end = text.rfind("\n\n");
  for (std::size_t p = text.find("id: "); p != std::string::npos && p < end; p = text.find("id: ", p + 1))
    out.push_back(std::stoll(text.substr(p + 4)));
  return out;
}

// A subscriber's connection over a real socket, done as the HTTP layer's
// SSE session does it, so that the kernel's buffers push back as they would.
class socket_link final : public subscriber {
 public:
  explicit socket_link(tcp::socket s) : socket_(std::move(s)) {}

  // Takes the socket; opened or not, the link is returned for inspection.
  static std::shared_ptr<socket_link> start(hub& h, tcp::socket& s, stream_start start,
                                            hub::open_result* result = nullptr) {
    auto link = std::make_shared<socket_link>(std::move(s));
    boost::system::error_code ec;
    link->socket_.non_blocking(true, ec);
    link->socket_.set_option(asio::socket_base::send_buffer_size(static_cast<int>(h.send_buffer_bytes())), ec);
    link->await_readable();
    const auto r = h.open(link, std::move(start));
    if (result) *result = r;
    return link;
  }

  bool is_open() const { return socket_.is_open(); }

 private:
  sent send(std::span<const iovec> bufs) override {
    msghdr msg{};
    msg.msg_iov = const_cast<iovec*>(bufs.data());
    msg.msg_iovlen = bufs.size();
    const ssize_t w = ::sendmsg(socket_.native_handle(), &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0) return {0, std::error_code(errno, std::system_category())};
    return {static_cast<std::size_t>(w), {}};
  }
  void await_writable() override {
    socket_.async_wait(asio::socket_base::wait_write,
                       [self = std::static_pointer_cast<socket_link>(shared_from_this())](
                           boost::system::error_code ec) { self->writable(!ec); });
  }
  void await_readable() {
    socket_.async_wait(asio::socket_base::wait_read, [self = std::static_pointer_cast<socket_link>(shared_from_this())](
                                                         boost::system::error_code ec) {
      if (ec || self->gone()) return;
      char buf[256];
      const ssize_t r = ::recv(self->socket_.native_handle(), buf, sizeof buf, MSG_DONTWAIT);
      if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) return self->hung_up();
      self->await_readable();
    });
  }
  void close(bool finish) override {
    boost::system::error_code ec;
    if (finish) socket_.shutdown(asio::socket_base::shutdown_send, ec);
    socket_.close(ec);
  }

  tcp::socket socket_;
};

void open(hub& h, tcp::socket& s, seq_t after = seq_t{0}, std::optional<std::string> user = std::nullopt) {
  hub::open_result r{};
  socket_link::start(h, s, {after, std::move(user), {}}, &r);
  EXPECT_EQ(r, hub::open_result::opened);
}

// Runs the loop until `client` has received `n` events (or a bound passes),
// reading as a client that keeps up would.
std::string read_events(asio::io_context& ioc, tcp::socket& client, std::size_t n,
                        std::chrono::milliseconds bound = std::chrono::seconds(5)) {
  std::string got;
  std::size_t events = 0, scanned = 0;
  const auto until = std::chrono::steady_clock::now() + bound;
  while (events < n && std::chrono::steady_clock::now() < until) {
    ioc.run_for(std::chrono::milliseconds(2));
    ioc.restart();
    got += drain(client);
    for (std::size_t p; (p = got.find("\n\n", scanned)) != std::string::npos; scanned = p + 2) ++events;
  }
  return got;
}

std::vector<std::int64_t> range(std::int64_t first, std::int64_t last) {
  std::vector<std::int64_t> v(static_cast<std::size_t>(std::max<std::int64_t>(0, last - first + 1)));
  std::iota(v.begin(), v.end(), first);
  return v;
}

// Compares event ids with first..last and says where they part.
::testing::AssertionResult ids_are(const std::string& text, std::int64_t first, std::int64_t last) {
  const auto got = ids(text);
  const auto want = range(first, last);
  if (got == want) return ::testing::AssertionSuccess();
  std::size_t i = 0;
  while (i < got.size() && i < want.size() && got[i] == want[i]) ++i;
  return ::testing::AssertionFailure() << "got " << got.size() << " events, want " << want.size()
                                       << "; first difference at index " << i << ": got "
                                       << (i < got.size() ? std::to_string(got[i]) : "nothing") << ", want "
                                       << (i < want.size() ? std::to_string(want[i]) : "nothing");
}

// A stand-in store holding seqs 1..n, answering page reads at once.
struct fake_store {
  std::int64_t n = 0;
  std::size_t reads = 0;
  std::size_t largest_page = 0;
  page_reader reader() {
    return [this](const read_query& q, page_done done) {
      ++reads;
      std::vector<message> rows;
      const std::int64_t last = std::min(n, q.up_to ? q.up_to->value() : n);
      for (std::int64_t s = q.after.value() + 1; s <= last && rows.size() < q.limit; ++s) {
        message m;
        m.id = fmt::format("id-{}", s);
        m.user_id.assign(1, 'u');
        m.content = std::string(100, 'c');
        m.seq = seq_t{s};
        rows.push_back(std::move(m));
      }
      largest_page = std::max(largest_page, rows.size());
      done(std::move(rows));
    };
  }
};

TEST(Hub, DeliversEveryFrameInOrderToEverySubscriber) {
  asio::io_context ioc;
  hub h(ioc, seq_t{0}, {});
  auto a = test_support::connect_loopback(ioc), b = test_support::connect_loopback(ioc);
  open(h, a.server);
  open(h, b.server);
  for (int i = 1; i <= 100; ++i) h.push({event(i)});
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
  auto a = test_support::connect_loopback(ioc);
  open(h, a.server, seq_t{0}, "bob");
  h.push({event(1, "alice"), event(2, "bob"), event(3, "alice"), event(4, "bob")});
  ioc.run_for(std::chrono::milliseconds(50));
  EXPECT_EQ(ids(drain(a.client)), (std::vector<std::int64_t>{2, 4}));
}

TEST(Hub, ReadsFromTheStoreWhatTheRingNoLongerHoldsThenContinuesLive) {
  asio::io_context ioc;
  fake_store store{.n = 10};
  hub h(ioc, seq_t{10}, {.ring_frames = 4}, store.reader());
  auto a = test_support::connect_loopback(ioc);
  open(h, a.server, seq_t{0});
  h.push({event(11), event(12)});
  EXPECT_TRUE(ids_are(read_events(ioc, a.client, 12), 1, 12));
  EXPECT_GE(store.reads, 1u);
}

TEST(Hub, ResumesFromTheRingWhenItCoversTheGap) {
  asio::io_context ioc;
  hub h(ioc, seq_t{5}, {.ring_frames = 4});
  EXPECT_TRUE(h.covers(seq_t{5}));
  EXPECT_FALSE(h.covers(seq_t{4}));
  h.push({event(6), event(7), event(8), event(9), event(10)});
  ioc.run_for(std::chrono::milliseconds(10));
  ioc.restart();
  EXPECT_FALSE(h.covers(seq_t{5}));  // 6 left the ring (it keeps 4)
  EXPECT_TRUE(h.covers(seq_t{6}));
  auto a = test_support::connect_loopback(ioc);
  open(h, a.server, seq_t{8});
  ioc.run_for(std::chrono::milliseconds(20));
  EXPECT_EQ(ids(drain(a.client)), (std::vector<std::int64_t>{9, 10}));
}

TEST(Hub, DisconnectsASlowClientWithoutStallingOthers) {
  asio::io_context ioc;
  hub h(ioc, seq_t{0}, {.client_buffer_bytes = 256 * 1024});
  auto slow = test_support::connect_loopback(ioc), fast = test_support::connect_loopback(ioc);
  slow.client.set_option(asio::socket_base::receive_buffer_size(4096));
  slow.server.set_option(asio::socket_base::send_buffer_size(4096));
  open(h, slow.server);
  open(h, fast.server);
  std::string got;
  constexpr int kEvents = 2000;  // ~2 MB, far past the slow client's buffer
  for (int i = 1; i <= kEvents; ++i) {
    h.push({event(i, "u", 1000)});
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
  auto a = test_support::connect_loopback(ioc);
  open(h, a.server);
  EXPECT_EQ(h.subscribers(), 1u);
  a.client.close();
  ioc.run_for(std::chrono::milliseconds(50));
  EXPECT_EQ(h.subscribers(), 0u);
}

TEST(Hub, CloseAllEndsStreamsAndRefusesNewOnes) {
  asio::io_context ioc;
  hub h(ioc, seq_t{0}, {});
  auto a = test_support::connect_loopback(ioc), b = test_support::connect_loopback(ioc);
  open(h, a.server);
  h.push({event(1)});
  ioc.run_for(std::chrono::milliseconds(10));
  ioc.restart();
  h.close_all();
  EXPECT_EQ(h.subscribers(), 0u);
  hub::open_result r{};
  auto refused = socket_link::start(h, b.server, {seq_t{1}, std::nullopt, {}}, &r);
  EXPECT_EQ(r, hub::open_result::closed);
  EXPECT_TRUE(refused->is_open());  // the caller closes its connection
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
  auto a = test_support::connect_loopback(ioc);
  open(h, a.server);
  h.push({event(1)});
  ioc.run_for(std::chrono::milliseconds(70));
  ioc.restart();
  h.push({event(2), event(3)});
  ioc.run_for(std::chrono::milliseconds(30));
  const auto got = drain(a.client);
  EXPECT_EQ(ids(got), (std::vector<std::int64_t>{1, 2, 3}));
  EXPECT_NE(got.find(": keep-alive\n\n"), std::string::npos);
}

}  // namespace
}  // namespace feed

namespace feed {
namespace {

// Shrinks both ends' buffers so that backpressure starts after some 100 KiB
// (much smaller buffers make loopback TCP itself crawl, with delayed window
// updates, which would measure the kernel rather than the hub).
void make_small(test_support::loopback_pair& c) {
  c.client.set_option(asio::socket_base::receive_buffer_size(32 * 1024));
  c.server.set_option(asio::socket_base::send_buffer_size(32 * 1024));
}

TEST(Hub, ResumeFromTheRingDeliversTheWholeBacklogWithoutNewPosts) {
  asio::io_context ioc;
  hub h(ioc, seq_t{0}, {});
  for (int i = 1; i <= 600; ++i) h.push({event(i)});
  ioc.run_for(std::chrono::milliseconds(20));
  ioc.restart();
  auto a = test_support::connect_loopback(ioc);
  open(h, a.server, seq_t{100});
  EXPECT_TRUE(ids_are(read_events(ioc, a.client, 500), 101, 600));
}

TEST(Hub, AReaderThatPausedGetsEverythingOnceItReadsAgain) {
  asio::io_context ioc;
  hub h(ioc, seq_t{0}, {});
  auto a = test_support::connect_loopback(ioc);
  make_small(a);
  open(h, a.server);
  for (int i = 1; i <= 5000; ++i) h.push({event(i, "u", 100)});
  ioc.run_for(std::chrono::milliseconds(50));  // the client reads nothing meanwhile
  ioc.restart();
  EXPECT_TRUE(ids_are(read_events(ioc, a.client, 5000), 1, 5000));
  EXPECT_EQ(h.stats().dropped_slow, 0u);
}

TEST(Hub, ACatchUpLargerThanTheClientBufferStillCompletes) {
  asio::io_context ioc;
  hub h(ioc, seq_t{0}, {.client_buffer_bytes = 64 * 1024});
  for (int i = 1; i <= 1000; ++i) h.push({event(i, "u", 300)});  // ~310 KB of backlog
  ioc.run_for(std::chrono::milliseconds(20));
  ioc.restart();
  auto a = test_support::connect_loopback(ioc);
  make_small(a);
  open(h, a.server, seq_t{1});
  EXPECT_TRUE(ids_are(read_events(ioc, a.client, 999), 2, 1000));
  EXPECT_EQ(h.stats().dropped_slow, 0u);
}

TEST(Hub, LiveEventsBeyondTheBufferStillDropACaughtUpClient) {
  asio::io_context ioc;
  hub h(ioc, seq_t{0}, {.client_buffer_bytes = 64 * 1024});
  auto a = test_support::connect_loopback(ioc);
  make_small(a);
  open(h, a.server);
  for (int i = 1; i <= 1000; ++i) h.push({event(i, "u", 300)});
  ioc.run_for(std::chrono::milliseconds(50));
  EXPECT_EQ(h.stats().dropped_slow, 1u);
  EXPECT_EQ(h.subscribers(), 0u);
}

// The lag was judged before the socket was offered the new bytes, so one
// event larger than the client buffer dropped a caught-up subscriber that
// had not yet been sent it: it got the event only by resuming, and so for
// every such event.
TEST(Hub, AnEventLargerThanTheClientBufferReachesACaughtUpClient) {
  asio::io_context ioc;
  hub h(ioc, seq_t{0}, {.client_buffer_bytes = 1024});
  auto a = test_support::connect_loopback(ioc);
  open(h, a.server);
  for (int i = 1; i <= 20; ++i) {
    h.push({event(i, "u", 3000)});
    EXPECT_TRUE(ids_are(read_events(ioc, a.client, 1), i, i)) << "event " << i;
  }
  EXPECT_EQ(h.stats().dropped_slow, 0u);
  EXPECT_EQ(h.subscribers(), 1u);
}

// Property: bursts no larger than the client buffer (1 KiB to 64 KiB), or
// of one event of any size up to 64 KiB, to a client that reads whatever
// arrives every few milliseconds: nothing is dropped, and it gets every
// event once, in order.
TEST(Hub, BurstsWithinTheClientBufferOrOfOneEventReachClientsThatKeepUp) {
  const auto seed = test_support::property_seed();
  std::mt19937_64 rng(seed);
  const int examples = test_support::property_examples(8);
  for (int example = 0; example < examples; ++example) {
    SCOPED_TRACE(fmt::format("FEED_PROPERTY_SEED={} example {}", seed, example));
    asio::io_context ioc;
    const std::size_t buffer = std::size_t{1024} << std::uniform_int_distribution<int>(0, 6)(rng);
    hub h(ioc, seq_t{0}, {.client_buffer_bytes = buffer});
    auto a = test_support::connect_loopback(ioc);
    open(h, a.server);
    std::string got;
    std::int64_t seq = 0;
    const int bursts = std::uniform_int_distribution<int>(1, 12)(rng);
    for (int b = 0; b < bursts; ++b) {
      std::size_t bytes = 0;
      const std::size_t limit = std::uniform_int_distribution<std::size_t>(100, buffer)(rng);
      const std::size_t largest = rng() % 8 ? 4000 : 64 * 1024;
      std::vector<frame_ptr> burst;
      for (;;) {
        auto f = event(seq + 1, "u", std::uniform_int_distribution<std::size_t>(0, largest)(rng));
        if (!burst.empty() && bytes + f->bytes.size() > limit) break;
        bytes += f->bytes.size();
        burst.push_back(std::move(f));
        ++seq;
      }
      h.push(std::move(burst));
      got += read_events(ioc, a.client, static_cast<std::size_t>(seq) - ids(got).size(),
                         std::chrono::milliseconds(std::uniform_int_distribution<int>(1, 20)(rng)));
    }
    got += read_events(ioc, a.client, static_cast<std::size_t>(seq) - ids(got).size());
    EXPECT_TRUE(ids_are(got, 1, seq)) << "client buffer " << buffer;
    EXPECT_EQ(h.stats().dropped_slow, 0u) << "client buffer " << buffer;
  }
}

TEST(Hub, StoreCatchUpReadsOnlyAsFastAsTheClientDrains) {
  asio::io_context ioc;
  fake_store store{.n = 6000};
  hub h(ioc, seq_t{6000}, {.client_buffer_bytes = 64 * 1024}, store.reader());
  auto a = test_support::connect_loopback(ioc);
  make_small(a);
  open(h, a.server, seq_t{0});
  ioc.run_for(std::chrono::milliseconds(100));  // the client reads nothing
  ioc.restart();
  // One page fills the socket buffers; no further page is read, and pages
  // are sized so that one fits in the client buffer.
  EXPECT_LE(store.reads, 60u);  // what fills the socket buffers, of the ~190 the whole catch-up takes
  EXPECT_LE(store.largest_page * kMaxFrameBytes, 64u * 1024);
  EXPECT_EQ(h.open_streams(), 1u);
  EXPECT_TRUE(ids_are(read_events(ioc, a.client, 6000, std::chrono::seconds(30)), 1, 6000));
}

TEST(Hub, ASubscriberEvictedFromTheRingContinuesFromTheStore) {
  asio::io_context ioc;
  fake_store store;
  hub h(ioc, seq_t{0}, {.ring_frames = 8}, store.reader());
  auto a = test_support::connect_loopback(ioc);
  make_small(a);
  open(h, a.server);
  for (int i = 1; i <= 2000; ++i) {
    store.n = i;  // stored before it is published, as the worker does
    h.push({event(i, "u", 100)});
  }
  ioc.run_for(std::chrono::milliseconds(30));  // the ring moves far past the paused client
  ioc.restart();
  EXPECT_TRUE(ids_are(read_events(ioc, a.client, 2000), 1, 2000));
  EXPECT_EQ(h.stats().dropped_slow, 0u);
  EXPECT_GE(store.reads, 1u);
}

TEST(Hub, DisconnectsAClientWhoseSocketTakesNothingForTheStallTimeout) {
  asio::io_context ioc;
  hub h(ioc, seq_t{0}, {.stall_timeout = std::chrono::milliseconds(100)});
  auto a = test_support::connect_loopback(ioc);
  make_small(a);
  open(h, a.server);
  for (int i = 1; i <= 1500; ++i) h.push({event(i, "u", 1000)});  // past the socket buffers, below the client buffer
  ioc.run_for(std::chrono::milliseconds(50));
  ioc.restart();
  EXPECT_EQ(h.subscribers(), 1u);
  ioc.run_for(std::chrono::milliseconds(1300));
  EXPECT_EQ(h.subscribers(), 0u);
  EXPECT_EQ(h.stats().dropped_slow, 1u);
}

TEST(Hub, SendsThePreambleFirst) {
  asio::io_context ioc;
  hub h(ioc, seq_t{0}, {});
  auto a = test_support::connect_loopback(ioc);
  hub::open_result r{};
  socket_link::start(h, a.server, {seq_t{0}, std::nullopt, "HEAD\n\n"}, &r);
  ASSERT_EQ(r, hub::open_result::opened);
  h.push({event(1)});
  const auto got = read_events(ioc, a.client, 1);
  EXPECT_EQ(got.rfind("HEAD\n\n", 0), 0u);
  EXPECT_EQ(ids(got), (std::vector<std::int64_t>{1}));
}

// Comments a stream got while the feed was idle are not the history of the
// feed: a stream opened later starts with the events it asked for.
TEST(Hub, AStreamOpenedAfterHeartbeatsGetsNoneOfThemReplayed) {
  asio::io_context ioc;
  hub h(ioc, seq_t{0}, {.heartbeat = std::chrono::milliseconds(5)});
  auto idle = test_support::connect_loopback(ioc);
  open(h, idle.server);
  ioc.run_for(std::chrono::milliseconds(30));
  ioc.restart();
  h.push({event(1)});
  ioc.run_for(std::chrono::milliseconds(30));  // heartbeats before and after the event
  ioc.restart();
  const auto seen = drain(idle.client);
  ASSERT_GE(std::count(seen.begin(), seen.end(), ':'), 2) << "no heartbeats while idle: " << seen;
  const std::string comment(": keep-alive\n\n");
  for (const seq_t after : {seq_t{0}, seq_t{1}}) {
    auto late = test_support::connect_loopback(ioc);
    open(h, late.server, after);
    ioc.poll();  // a heartbeat may fall due meanwhile: one comment at most
    ioc.restart();
    auto got = drain(late.client);
    if (got.ends_with(comment)) got.resize(got.size() - comment.size());
    EXPECT_EQ(got, after == seq_t{0} ? event(1)->bytes : std::string()) << "after " << after.value();
  }
}

TEST(Hub, HeartbeatsTakeNoPlaceInTheRing) {
  asio::io_context ioc;
  hub h(ioc, seq_t{0}, {.ring_frames = 4, .heartbeat = std::chrono::milliseconds(5)});
  auto a = test_support::connect_loopback(ioc);
  open(h, a.server);
  h.push({event(1), event(2), event(3)});
  ioc.run_for(std::chrono::milliseconds(60));  // about a dozen heartbeats
  ioc.restart();
  EXPECT_NE(drain(a.client).find(": keep-alive\n\n"), std::string::npos);
  EXPECT_TRUE(h.covers(seq_t{0})) << "heartbeats pushed events out of the ring";
  auto b = test_support::connect_loopback(ioc);
  open(h, b.server);
  EXPECT_TRUE(ids_are(read_events(ioc, b.client, 3), 1, 3));
}

// A heartbeat is due while a slow reader is in the middle of an event: it
// must wait for the event's end, or the client would read a comment inside
// the event's data.
TEST(Hub, AHeartbeatNeverLandsInsideAnEvent) {
  asio::io_context ioc;
  hub h(ioc, seq_t{0}, {.heartbeat = std::chrono::milliseconds(1)});
  auto a = test_support::connect_loopback(ioc);
  make_small(a);
  open(h, a.server);
  for (int i = 1; i <= 400; ++i) h.push({event(i, "u", 1500)});  // far more than the socket buffers hold
  std::string got;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (ids(got).size() < 400 && std::chrono::steady_clock::now() < until) {
    ioc.run_for(std::chrono::milliseconds(3));  // heartbeats fall due between the reads
    ioc.restart();
    got += drain(a.client);
  }
  ASSERT_TRUE(ids_are(got, 1, 400));
  // Every block is a whole event or a whole comment.
  std::size_t blocks = 0;
  for (std::size_t p = 0, end; (end = got.find("\n\n", p)) != std::string::npos; p = end + 2, ++blocks) {
    const std::string block = got.substr(p, end + 2 - p);
    if (block == ": keep-alive\n\n") continue;
    ASSERT_TRUE(block.starts_with("id: ")) << "block " << blocks << ": " << block.substr(0, 40);
    ASSERT_EQ(block, event(std::stoll(block.substr(4)), "u", 1500)->bytes) << "block " << blocks;
  }
  EXPECT_GE(blocks, 400u);
}

// A stream that reads one author is sent nothing while others post, yet
// its place in the ring is behind whenever a flush pass has yet to reach
// it: with many streams, nearly always. It must still get its heartbeats.
TEST(Hub, AStreamReadingOneAuthorGetsHeartbeatsWhileOthersPost) {
  asio::io_context ioc;
  hub h(ioc, seq_t{0}, {.heartbeat = std::chrono::milliseconds(10)});
  std::vector<test_support::loopback_pair> plain;
  for (int i = 0; i < 300; ++i) {
    plain.push_back(test_support::connect_loopback(ioc));
    open(h, plain.back().server);
  }
  auto quiet = test_support::connect_loopback(ioc);
  open(h, quiet.server, seq_t{0}, "nobody");
  asio::steady_timer pace(ioc);
  int pushed = 0;
  std::function<void()> post_one = [&] {
    for (int i = 0; i < 10; ++i) h.push({event(++pushed, "u")});
    pace.expires_after(std::chrono::milliseconds(1));
    pace.async_wait([&](boost::system::error_code ec) {
      if (!ec && pushed < 3000) post_one();
    });
  };
  post_one();
  std::string got;
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(400);
  while (std::chrono::steady_clock::now() < until) {
    ioc.run_for(std::chrono::milliseconds(5));
    ioc.restart();
    got += drain(quiet.client);
    for (auto& p : plain) drain(p.client);
  }
  std::size_t beats = 0;
  for (std::size_t p = 0; (p = got.find(": keep-alive\n\n", p)) != std::string::npos; ++p) ++beats;
  EXPECT_TRUE(ids(got).empty());
  EXPECT_GE(beats, 20u) << "of about 40 intervals, while " << pushed << " events went to the others";
}

// The same promise over generated cases: events of random sizes by two
// authors, a stream of each author and one of all, readers that pause for
// random spans between reads, a heartbeat due every millisecond. Every
// stream is whole events and whole comments, its events all there once,
// in order. (These cases seldom catch a stream in the middle of a frame at
// a heartbeat; AHeartbeatNeverLandsInsideAnEvent is the one that does.)
TEST(Hub, HeartbeatsLandOnlyBetweenEventsWhateverTheSizesAndPauses) {
  const auto seed = test_support::property_seed();
  std::mt19937_64 rng(seed);
  const int examples = test_support::property_examples(6);
  for (int example = 0; example < examples; ++example) {
    SCOPED_TRACE(fmt::format("FEED_PROPERTY_SEED={} example {}", seed, example));
    asio::io_context ioc;
    hub h(ioc, seq_t{0}, {.heartbeat = std::chrono::milliseconds(1)});
    const std::vector<std::optional<std::string>> filters{std::nullopt, "a", "b"};
    std::vector<test_support::loopback_pair> links;
    for (const auto& f : filters) {
      links.push_back(test_support::connect_loopback(ioc));
      make_small(links.back());
      open(h, links.back().server, seq_t{0}, f);
    }
    const int n = std::uniform_int_distribution<int>(20, 250)(rng);
    std::vector<frame_ptr> sent;
    for (int i = 1; i <= n; ++i) {
      const std::string author = rng() % 2 ? "a" : "b";
      sent.push_back(event(i, author, std::uniform_int_distribution<std::size_t>(0, 4000)(rng)));
      if (i % 16 == 0) ioc.poll();  // some events find the stream mid-write
      ioc.restart();
      h.push({sent.back()});
    }
    std::vector<std::string> got(filters.size());
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    auto complete = [&](std::size_t k) {
      const auto want = std::count_if(sent.begin(), sent.end(),
                                      [&](const frame_ptr& f) { return !filters[k] || f->user_id == *filters[k]; });
      return static_cast<std::ptrdiff_t>(ids(got[k]).size()) == want;
    };
    while (std::chrono::steady_clock::now() < until) {
      ioc.run_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(1, 6)(rng)));
      ioc.restart();
      for (std::size_t k = 0; k < links.size(); ++k)
        if (rng() % 3) got[k] += drain(links[k].client);  // now and then a stream reads nothing
      bool all = true;
      for (std::size_t k = 0; k < links.size(); ++k) all = all && complete(k);
      if (all) break;
    }
    for (std::size_t k = 0; k < links.size(); ++k) {
      std::vector<std::string> want;
      for (const auto& f : sent)
        if (!filters[k] || f->user_id == *filters[k]) want.push_back(f->bytes);
      std::vector<std::string> events;
      for (std::size_t p = 0, end; (end = got[k].find("\n\n", p)) != std::string::npos; p = end + 2) {
        const std::string block = got[k].substr(p, end + 2 - p);
        if (block != ": keep-alive\n\n") events.push_back(block);
      }
      EXPECT_EQ(events, want) << "stream " << k;


    }
  }
}

}  // namespace
}  // namespace feed
