#include "broadcast/broadcaster.h"

#include <map>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include "model/sse_frame.h"

namespace feed {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

message m(std::int64_t seq) { return message{"id" + std::to_string(seq), "u", "c", now_utc(), seq_t{seq}}; }

std::vector<message> ms(std::int64_t first, std::int64_t last) {
  std::vector<message> v;
  for (auto s = first; s <= last; ++s) v.push_back(m(s));
  return v;
}

// A stand-in store behind the broadcaster's callbacks: the rows it holds,
// what it was asked, and a switch that makes every call fail. The gap
// thread calls it, so it locks.
struct fake_store {
  struct call {
    std::int64_t first, last;
  };
  std::mutex mu;
  std::map<std::int64_t, message> rows;
  std::vector<call> fills;
  int probes = 0;
  bool failing = false;

  void put(std::int64_t first, std::int64_t last) {
    std::lock_guard lock(mu);
    for (auto s = first; s <= last; ++s) rows[s] = m(s);
  }
  gap_filler filler() {
    return [this](seq_t first, seq_t last) -> result<std::vector<message>> {
      std::lock_guard lock(mu);
      fills.push_back({first.value(), last.value()});
      if (failing) return error(errc::unavailable, "the store is down");
      std::vector<message> out;
      for (auto it = rows.lower_bound(first.value()); it != rows.end() && it->first <= last.value(); ++it)
        out.push_back(it->second);
      return out;
    };
  }
  head_probe prober() {
    return [this]() -> result<seq_t> {
      std::lock_guard lock(mu);
      ++probes;
      if (failing) return error(errc::unavailable, "the store is down");
      return seq_t{rows.empty() ? 0 : rows.rbegin()->first};
    };
  }
  std::vector<call> fill_calls() {
    std::lock_guard lock(mu);
    return fills;
  }
};

// A connection that takes everything at once and keeps it: the broadcaster
// is tested here, not the socket.
class memory_link final : public subscriber {
 public:
  std::string got;
  bool closed = false;

  std::vector<std::int64_t> ids() const {
    std::vector<std::int64_t> out;
    for (auto p = got.find("id: "); p != std::string::npos; p = got.find("id: ", p + 1))
      out.push_back(std::stoll(got.substr(p + 4)));
    return out;
  }

 private:
  sent send(std::span<const iovec> bufs) override {
    std::size_t n = 0;
    for (const auto& b : bufs) {
      got.append(static_cast<const char*>(b.iov_base), b.iov_len);
      n += b.iov_len;
    }
    return {n, {}};
  }
  void await_writable() override {}
  void close(bool) override { closed = true; }
};

std::vector<std::int64_t> seqs(std::int64_t first, std::int64_t last) {
  std::vector<std::int64_t> v;
  for (auto s = first; s <= last; ++s) v.push_back(s);
  return v;
}

struct fixture {
  asio::io_context ioc;
  fake_store store;
  std::shared_ptr<memory_link> link = std::make_shared<memory_link>();
  std::unique_ptr<broadcaster> b;

  void start(seq_t last, broadcaster_options opts, bool with_probe = false) {
    opts.hub.heartbeat = 0ms;
    b = std::make_unique<broadcaster>(std::vector<asio::io_context*>{&ioc}, last, opts, store.filler(),
                                      with_probe ? store.prober() : head_probe{});
    EXPECT_EQ(b->hub_at(0).open(link, {last, std::nullopt, {}}), hub::open_result::opened);
  }
  // Runs the loop until the link has `n` events or `bound` passes.
  std::vector<std::int64_t> run_until(std::size_t n, std::chrono::milliseconds bound = 2s) {
    const auto until = std::chrono::steady_clock::now() + bound;
    while (link->ids().size() < n && std::chrono::steady_clock::now() < until) {
      ioc.run_for(2ms);
      ioc.restart();
    }
    return link->ids();
  }
};

TEST(Broadcaster, DeliversInOrderAndDropsDuplicates) {
  fixture f;
  f.start(seq_t{0}, {});
  f.b->fan_out(ms(1, 3));
  f.b->fan_out({m(2), m(3), m(4)});
  EXPECT_EQ(f.run_until(4), seqs(1, 4));
  EXPECT_EQ(f.b->last_seq(), seq_t{4});
  EXPECT_TRUE(f.store.fill_calls().empty());
}

TEST(Broadcaster, FramesOfALongRunAreEachTheirMessagesFrame) {
  fixture f;
  f.start(seq_t{0}, {});
  // More than one block of frames, and a run that ends mid-block.
  std::vector<message> run;
  for (std::int64_t s = 1; s <= 100; ++s) {
    run.push_back(m(s));
    run.back().content = "content " + std::to_string(s);
  }
  std::string want;
  for (const auto& x : run) want += sse_event_frame(x);
  f.b->fan_out(run);
  f.b->fan_out(ms(101, 101));
  want += sse_event_frame(m(101));
  EXPECT_EQ(f.run_until(101), seqs(1, 101));
  // m() stamps now_utc(): compare everything but created_at's text.
  auto strip_times = [](std::string s) {
    for (auto p = s.find("\"created_at\":\""); p != std::string::npos; p = s.find("\"created_at\":\"", p + 1))
      s.replace(p + 14, 27, 27, '-');
    return s;
  };
  EXPECT_EQ(strip_times(f.link->got), strip_times(want));
}

TEST(Broadcaster, ARingThatDropsPartOfABlockKeepsTheRest) {
  fixture f;
  f.start(seq_t{0}, {.hub = {.ring_frames = 15}});
  for (std::int64_t s = 1; s <= 200; s += 10) {
    f.b->fan_out(ms(s, s + 9));
    f.run_until(static_cast<std::size_t>(s + 9));
  }
  EXPECT_EQ(f.run_until(200), seqs(1, 200));
}

TEST(Broadcaster, FillsAHoleFromTheStoreAfterTheGapWait) {
  fixture f;
  f.store.put(1, 5);
  f.start(seq_t{0}, {.hub = {}, .gap_wait = 200ms});
  f.b->fan_out({m(1)});
  f.b->fan_out(ms(4, 5));  // 2 and 3 never arrive as events
  EXPECT_EQ(f.run_until(1, 5ms), seqs(1, 1));  // held back behind the hole meanwhile
  EXPECT_EQ(f.run_until(5), seqs(1, 5));
  const auto calls = f.store.fill_calls();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].first, 2);
  EXPECT_EQ(calls[0].last, 3);
}

TEST(Broadcaster, AHoleTheStoreCannotFillHoldsBackWhatFollowsAndIsAskedAgain) {
  fixture f;
  f.store.put(1, 1);  // 2 is not stored (yet)
  f.store.put(3, 4);
  f.start(seq_t{0}, {.hub = {}, .gap_wait = 10ms});
  f.b->fan_out({m(1), m(3), m(4)});
  for (int i = 0; i < 100 && f.store.fill_calls().size() < 2; ++i) f.run_until(4, 20ms);
  EXPECT_GE(f.store.fill_calls().size(), 2u);  // asked again after each gap_wait
  EXPECT_EQ(f.link->ids(), seqs(1, 1));
  // The event arrives late after all: the run behind it follows.
  f.b->fan_out({m(2)});
  EXPECT_EQ(f.run_until(4), seqs(1, 4));
}

TEST(Broadcaster, AHoleIsAskedAgainWhileTheStoreFails) {
  fixture f;
  f.store.put(1, 3);
  f.store.failing = true;
  f.start(seq_t{0}, {.hub = {}, .gap_wait = 10ms});
  f.b->fan_out({m(1), m(3)});
  EXPECT_EQ(f.run_until(3, 100ms), seqs(1, 1));
  {
    std::lock_guard lock(f.store.mu);
    f.store.failing = false;
  }
  EXPECT_EQ(f.run_until(3), seqs(1, 3));
}

TEST(Broadcaster, SkipsAnUnfillableHoleOnceTooManyWaitBehindIt) {
  fixture f;
  f.start(seq_t{0}, {.hub = {}, .gap_wait = 1h, .max_pending = 2});
  f.b->fan_out({m(1), m(3), m(4)});
  EXPECT_EQ(f.run_until(2, 50ms), seqs(1, 1));
  f.b->fan_out({m(5)});  // three wait behind the hole: past max_pending
  EXPECT_EQ(f.run_until(4), (std::vector<std::int64_t>{1, 3, 4, 5}));
}

TEST(Broadcaster, HeadProbeDeliversTheTailThatNeverArrived) {
  fixture f;
  f.store.put(1, 5);
  f.start(seq_t{0}, {.hub = {}, .gap_wait = 20ms, .head_probe_interval = 5ms}, true);
  f.b->fan_out(ms(1, 2));  // 3..5 are stored but their events are lost
  EXPECT_EQ(f.run_until(5), seqs(1, 5));
  EXPECT_EQ(f.b->last_seq(), seq_t{5});
  const auto calls = f.store.fill_calls();
  ASSERT_FALSE(calls.empty());
  EXPECT_EQ(calls.back().first, 3);
  EXPECT_EQ(calls.back().last, 5);
}

TEST(Broadcaster, HeadProbeLeavesTheStoreAloneWhenNothingIsMissing) {
  fixture f;
  f.store.put(1, 3);
  f.start(seq_t{0}, {.hub = {}, .gap_wait = 5ms, .head_probe_interval = 5ms}, true);
  f.b->fan_out(ms(1, 3));
  EXPECT_EQ(f.run_until(3), seqs(1, 3));
  const auto probes = [&] {
    std::lock_guard lock(f.store.mu);
    return f.store.probes;
  };
  for (int i = 0; i < 100 && probes() < 3; ++i) f.run_until(4, 20ms);
  EXPECT_GE(probes(), 3);
  EXPECT_TRUE(f.store.fill_calls().empty());
}

TEST(Broadcaster, HeadProbeWaitsTheGapWaitForAnEventOnItsWay) {
  fixture f;
  f.store.put(1, 2);
  f.start(seq_t{0}, {.hub = {}, .gap_wait = 1h, .head_probe_interval = 5ms}, true);
  f.b->fan_out(ms(1, 1));  // 2 is stored and its event merely late
  f.run_until(2, 60ms);
  EXPECT_TRUE(f.store.fill_calls().empty());
  f.b->fan_out(ms(2, 2));
  EXPECT_EQ(f.run_until(2), seqs(1, 2));
}

TEST(Broadcaster, HeadProbeLeavesAloneAStreamWhoseStoreIsAlwaysAhead) {
  // Under steady traffic the store is ahead of the delivered seq nearly all
  // the time: each message is stored before its event comes back. Every
  // event here arrives within a few ms, far inside the gap wait, so nothing
  // is missing and the store must not be asked, however long the store
  // stays one or two ahead.
  fixture f;
  constexpr std::int64_t n = 150;
  f.store.put(1, 1);
  f.start(seq_t{0}, {.hub = {}, .gap_wait = 40ms, .head_probe_interval = 2ms}, true);
  std::thread writer([&] {
    for (std::int64_t s = 1; s <= n; ++s) {
      if (s < n) f.store.put(s + 1, s + 1);  // the next one is stored first
      std::this_thread::sleep_for(3ms);
      f.b->fan_out(ms(s, s));
    }
  });
  const auto got = f.run_until(n, 10s);
  writer.join();
  EXPECT_EQ(got, seqs(1, n));
  for (const auto& c : f.store.fill_calls()) ADD_FAILURE() << "filled " << c.first << ".." << c.last;
}

TEST(Broadcaster, HeadProbeFailuresChangeNothing) {
  fixture f;
  f.store.put(1, 4);
  f.store.failing = true;
  f.start(seq_t{0}, {.hub = {}, .gap_wait = 5ms, .head_probe_interval = 5ms}, true);
  f.b->fan_out(ms(1, 2));
  EXPECT_EQ(f.run_until(3, 60ms), seqs(1, 2));
  EXPECT_TRUE(f.store.fill_calls().empty());
}

}  // namespace
}  // namespace feed
