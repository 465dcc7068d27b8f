// Micro-benchmarks of what the worker side spends on one post, with the heap
// calls per message beside the time (this binary counts every malloc-family
// call it makes, SQLite's included):
//   - SqliteInsert/<batch>/<full>: sqlite_store::insert_batch of fresh
//     messages into a growing database (full = synchronous FULL, else NORMAL)
//   - SqliteInsertDuplicates/<batch>: a batch whose every 8th message is
//     already stored (redelivery): the idempotent path
//   - Sequencer/<batch>: sequencer::push of an in-order batch
//   - FanOut/<batch>: broadcaster::fan_out plus the hub's append (one loop, no
//     subscribers: the ring is still filled, for resumes)
//   - SseEventFrame/<content>: the frame of one message
// Build: see ../CMakeLists.txt. Run two builds one after the other on an
// idle machine; compare the same rows.
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <fmt/format.h>

#define FEED_MICRO_COUNT_ALLOCS  // harness.h counts this binary's heap calls
#include "harness.h"

#include "broadcast/broadcaster.h"
#include "broadcast/sequencer.h"
#include "model/message.h"
#include "model/message_id.h"
#include "model/sse_frame.h"
#include "store/sqlite/sqlite_store.h"

namespace {

namespace asio = boost::asio;

feed::message sample(std::int64_t seq, std::string content = micro::sample_content) {
  return feed::message{"0b5c9a6e-8f3d-4c1e-9a7b-2d4e6f8a0c1e", fmt::format("user_{}", seq % 100), std::move(content),
                       feed::timestamp{std::chrono::microseconds{1'714'565'520'123'456 + seq * 37}},
                       feed::seq_t{seq}};
}

std::vector<feed::message> fresh(std::size_t n, std::int64_t& counter) {
  std::vector<feed::message> v;
  v.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    ++counter;
    v.push_back({feed::random_message_id(), fmt::format("user_{}", counter % 100), micro::sample_content,
                 feed::now_utc(), feed::seq_t{0}});
  }
  return v;
}

void per_message(benchmark::State& state, unsigned long allocs, std::size_t messages) {
  micro::report_allocs(state, "allocs/msg", allocs, static_cast<std::int64_t>(messages));
  state.counters["msg/s"] = benchmark::Counter(double(messages), benchmark::Counter::kIsRate);
}

struct temp_db {
  std::filesystem::path dir =
      std::filesystem::temp_directory_path() / fmt::format("feed-worker-path-micro-{}", ::getpid());
  temp_db() { std::filesystem::remove_all(dir); }
  ~temp_db() { std::filesystem::remove_all(dir); }
};

// insert_batch of one prepared batch of state.range(0) fresh messages per
// iteration into a new database; with `duplicates`, every 8th message of a
// batch is one the batch before stored.
void insert_batches(benchmark::State& state, const char* synchronous, bool duplicates) {
  const auto batch = static_cast<std::size_t>(state.range(0));
  temp_db tmp;
  auto s = feed::sqlite_store::open({tmp.dir / "feed.db", synchronous});
  if (!s) {
    state.SkipWithError(s.err().message.c_str());
    return;
  }
  std::int64_t counter = 0;
  std::vector<std::vector<feed::message>> batches;
  for (std::int64_t i = 0; i < state.max_iterations; ++i) {
    batches.push_back(fresh(batch, counter));
    if (duplicates && i > 0)
      for (std::size_t j = 0; j < batch; j += 8) batches[i][j] = batches[i - 1][j + 1];
  }
  std::size_t i = 0;
  unsigned long allocs = 0;
  for (auto _ : state) {
    auto r = micro::counted(allocs, [&] { return (*s)->insert_batch(batches[i++]); });
    if (!r) {
      state.SkipWithError(r.err().message.c_str());
      break;
    }
    benchmark::DoNotOptimize(r);
  }
  per_message(state, allocs, i * batch);
}

void BM_SqliteInsert(benchmark::State& state) { insert_batches(state, state.range(1) ? "FULL" : "NORMAL", false); }
BENCHMARK(BM_SqliteInsert)->Args({64, 0})->Args({256, 0})->Args({64, 1})->Iterations(1500)->UseRealTime();

void BM_SqliteInsertDuplicates(benchmark::State& state) { insert_batches(state, "NORMAL", true); }
BENCHMARK(BM_SqliteInsertDuplicates)->Arg(64)->Iterations(500)->UseRealTime();

// Hands `consume` a batch of state.range(0) messages per iteration, their
// seqs continuing the batch before (the copy and numbering are not timed).
// consume(batch, allocs) adds the heap calls it measures to allocs and
// returns how many messages it passed on.
template <class Consume>
void numbered_batches(benchmark::State& state, Consume consume) {
  const auto batch = static_cast<std::size_t>(state.range(0));
  std::int64_t next = 0;
  unsigned long allocs = 0;
  std::size_t messages = 0;
  std::vector<feed::message> proto;
  for (std::size_t j = 0; j < batch; ++j) proto.push_back(sample(1 + std::int64_t(j)));
  for (auto _ : state) {
    state.PauseTiming();
    auto v = proto;
    for (auto& m : v) m.seq = feed::seq_t{++next};
    state.ResumeTiming();
    messages += consume(std::move(v), allocs);
  }
  per_message(state, allocs, messages);
}

void BM_Sequencer(benchmark::State& state) {
  feed::sequencer seq(feed::seq_t{0});
  numbered_batches(state, [&](std::vector<feed::message>&& v, unsigned long& allocs) {
    auto out = micro::counted(allocs, [&] { return seq.push(std::move(v)); });
    const auto n = out.size();
    state.PauseTiming();
    out = {};
    state.ResumeTiming();
    return n;
  });
}
BENCHMARK(BM_Sequencer)->Arg(64);

void BM_FanOut(benchmark::State& state) {
  asio::io_context ioc;
  std::vector<asio::io_context*> loops{&ioc};
  feed::broadcaster b(loops, feed::seq_t{0}, {}, [](feed::seq_t, feed::seq_t) {
    return feed::result<std::vector<feed::message>>(std::vector<feed::message>{});
  });
  numbered_batches(state, [&](std::vector<feed::message>&& v, unsigned long& allocs) {
    const auto n = v.size();
    micro::counted(allocs, [&] {
      b.fan_out(std::move(v));
      ioc.poll();
      ioc.restart();
    });
    return n;
  });
  b.stop();
}
BENCHMARK(BM_FanOut)->Arg(64);

void BM_SseEventFrame(benchmark::State& state) {
  // 0: feed-bot-like text; 1: every byte class the encoder escapes.
  const auto m = sample(123456, state.range(0) == 0 ? micro::sample_content
                                                     : std::string("tab\there \"quoted\" back\\slash \x01\x1f "
                                                                   "line\nbreak \xe2\x80\xa8 end"));
  std::size_t bytes = 0;
  unsigned long allocs = 0;
  std::size_t messages = 0;
  for (auto _ : state) {
    auto f = micro::counted(allocs, [&] { return feed::sse_event_frame(m); });
    bytes = f.size();
    ++messages;
    benchmark::DoNotOptimize(f);
  }
  per_message(state, allocs, messages);
  state.SetLabel(fmt::format("frame {} B", bytes));
}
BENCHMARK(BM_SseEventFrame)->Arg(0)->Arg(1);

}  // namespace

BENCHMARK_MAIN();
