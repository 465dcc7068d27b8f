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
// Build: see CMakeLists.txt here. Run two builds one after the other on an
// idle machine; compare the same rows.
#include <benchmark/benchmark.h>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <fmt/format.h>

#include "broadcast/broadcaster.h"
#include "broadcast/sequencer.h"
#include "model/message.h"
#include "model/message_id.h"
#include "model/sse_frame.h"
#include "store/sqlite/sqlite_store.h"

extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void* __libc_memalign(std::size_t, std::size_t);
void __libc_free(void*);
}

namespace {
std::atomic<unsigned long> g_allocs{0};
}

extern "C" {
void* malloc(std::size_t n) {
  g_allocs.fetch_add(1, std::memory_order_relaxed);
  return __libc_malloc(n);
}
void* calloc(std::size_t a, std::size_t b) {
  g_allocs.fetch_add(1, std::memory_order_relaxed);
  return __libc_calloc(a, b);
}
void* realloc(void* p, std::size_t n) {
  g_allocs.fetch_add(1, std::memory_order_relaxed);
  return __libc_realloc(p, n);
}
void* memalign(std::size_t a, std::size_t n) {
  g_allocs.fetch_add(1, std::memory_order_relaxed);
  return __libc_memalign(a, n);
}
void* aligned_alloc(std::size_t a, std::size_t n) { return memalign(a, n); }
int posix_memalign(void** out, std::size_t a, std::size_t n) {
  void* p = memalign(a, n);
  if (!p) return 12;
  *out = p;
  return 0;
}
void free(void* p) { __libc_free(p); }
}

namespace {

namespace asio = boost::asio;

const std::string kContent =
    "Le café est prêt, the build is green again and the deploy went out before lunch. "
    "Naïve caching strikes again #t1a2b3c4-42";

feed::message sample(std::int64_t seq, std::string content = kContent) {
  return feed::message{"0b5c9a6e-8f3d-4c1e-9a7b-2d4e6f8a0c1e", fmt::format("user_{}", seq % 100), std::move(content),
                       feed::timestamp{std::chrono::microseconds{1'714'565'520'123'456 + seq * 37}},
                       feed::seq_t{seq}};
}

std::vector<feed::message> fresh(std::size_t n, std::int64_t& counter) {
  std::vector<feed::message> v;
  v.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    ++counter;
    v.push_back({feed::random_message_id(), fmt::format("user_{}", counter % 100), kContent, feed::now_utc(),
                 feed::seq_t{0}});
  }
  return v;
}

void per_message(benchmark::State& state, unsigned long allocs, std::size_t messages) {
  state.counters["allocs/msg"] = double(allocs) / double(messages);
  state.counters["msg/s"] = benchmark::Counter(double(messages), benchmark::Counter::kIsRate);
  state.SetItemsProcessed(static_cast<std::int64_t>(messages));
}

struct temp_db {
  std::filesystem::path dir =
      std::filesystem::temp_directory_path() / fmt::format("feed-worker-path-micro-{}", ::getpid());
  temp_db() { std::filesystem::remove_all(dir); }
  ~temp_db() { std::filesystem::remove_all(dir); }
};

void BM_SqliteInsert(benchmark::State& state) {
  const auto batch = static_cast<std::size_t>(state.range(0));
  temp_db tmp;
  auto s = feed::sqlite_store::open({tmp.dir / "feed.db", state.range(1) ? "FULL" : "NORMAL"});
  if (!s) {
    state.SkipWithError(s.err().message.c_str());
    return;
  }
  std::int64_t counter = 0;
  std::vector<std::vector<feed::message>> batches;
  for (std::int64_t i = 0; i < state.max_iterations; ++i) batches.push_back(fresh(batch, counter));
  std::size_t i = 0;
  unsigned long allocs = 0;
  for (auto _ : state) {
    const auto before = g_allocs.load(std::memory_order_relaxed);
    auto r = (*s)->insert_batch(batches[i++]);
    allocs += g_allocs.load(std::memory_order_relaxed) - before;
    if (!r) {
      state.SkipWithError(r.err().message.c_str());
      break;
    }
    benchmark::DoNotOptimize(r);
  }
  per_message(state, allocs, i * batch);
}
BENCHMARK(BM_SqliteInsert)->Args({64, 0})->Args({256, 0})->Args({64, 1})->Iterations(1500)->UseRealTime();

void BM_SqliteInsertDuplicates(benchmark::State& state) {
  const auto batch = static_cast<std::size_t>(state.range(0));
  temp_db tmp;
  auto s = feed::sqlite_store::open({tmp.dir / "feed.db", "NORMAL"});
  if (!s) {
    state.SkipWithError(s.err().message.c_str());
    return;
  }
  std::int64_t counter = 0;
  std::vector<std::vector<feed::message>> batches;
  for (std::int64_t i = 0; i < state.max_iterations; ++i) {
    batches.push_back(fresh(batch, counter));
    if (i > 0)
      for (std::size_t j = 0; j < batch; j += 8) batches[i][j] = batches[i - 1][j + 1];
  }
  std::size_t i = 0;
  unsigned long allocs = 0;
  for (auto _ : state) {
    const auto before = g_allocs.load(std::memory_order_relaxed);
    auto r = (*s)->insert_batch(batches[i++]);
    allocs += g_allocs.load(std::memory_order_relaxed) - before;
    if (!r) {
      state.SkipWithError(r.err().message.c_str());
      break;
    }
    benchmark::DoNotOptimize(r);
  }
  per_message(state, allocs, i * batch);
}
BENCHMARK(BM_SqliteInsertDuplicates)->Arg(64)->Iterations(500)->UseRealTime();

void BM_Sequencer(benchmark::State& state) {
  const auto batch = static_cast<std::size_t>(state.range(0));
  feed::sequencer seq(feed::seq_t{0});
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
    const auto before = g_allocs.load(std::memory_order_relaxed);
    auto out = seq.push(std::move(v));
    allocs += g_allocs.load(std::memory_order_relaxed) - before;
    messages += out.size();
    state.PauseTiming();
    out = {};
    state.ResumeTiming();
  }
  per_message(state, allocs, messages);
}
BENCHMARK(BM_Sequencer)->Arg(64);

void BM_FanOut(benchmark::State& state) {
  const auto batch = static_cast<std::size_t>(state.range(0));
  asio::io_context ioc;
  std::vector<asio::io_context*> loops{&ioc};
  feed::broadcaster b(loops, feed::seq_t{0}, {}, [](feed::seq_t, feed::seq_t) {
    return feed::result<std::vector<feed::message>>(std::vector<feed::message>{});
  });
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
    const auto before = g_allocs.load(std::memory_order_relaxed);
    b.fan_out(std::move(v));
    ioc.poll();
    ioc.restart();
    allocs += g_allocs.load(std::memory_order_relaxed) - before;
    messages += batch;
  }
  b.stop();
  per_message(state, allocs, messages);
}
BENCHMARK(BM_FanOut)->Arg(64);

void BM_SseEventFrame(benchmark::State& state) {
  // 0: feed-bot-like text; 1: every byte class the encoder escapes.
  const auto m = sample(123456, state.range(0) == 0 ? kContent
                                                     : std::string("tab\there \"quoted\" back\\slash \x01\x1f "
                                                                   "line\nbreak \xe2\x80\xa8 end"));
  std::size_t bytes = 0;
  unsigned long allocs = 0;
  std::size_t messages = 0;
  for (auto _ : state) {
    const auto before = g_allocs.load(std::memory_order_relaxed);
    auto f = feed::sse_event_frame(m);
    allocs += g_allocs.load(std::memory_order_relaxed) - before;
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
