// What the micro-benchmarks here (feed_micro.cc, envelope/, worker_path/)
// share.
//
// Timing is Google Benchmark's in all of them: ns per iteration in the
// Time and CPU columns, repeated runs with --benchmark_repetitions=N and
// their median with --benchmark_report_aggregates_only=true (bench/micro.sh).
// This header adds:
//
//  - sample_content: post text like feed-bot's.
//  - Heap calls, in a binary that defines FEED_MICRO_COUNT_ALLOCS before
//    including this header (in one translation unit): the header then
//    defines malloc, calloc, realloc, memalign, aligned_alloc and
//    posix_memalign, which count the call and go on to glibc's own
//    (__libc_malloc & co.); operator new comes through malloc. free is not
//    counted. allocs() reads the count; counted(), count_loop() and
//    report_allocs() measure and report it per item beside the time.
//    bench/micro/malloc_count.c counts the same calls, and frees and bytes,
//    in a whole process (LD_PRELOAD, for bench/cpu_per_post.sh).
#pragma once

#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>
#include <utility>

namespace micro {

// ~120 bytes of content with a few multi-byte characters, like feed-bot's.
inline const std::string sample_content =
    "Le café est prêt, the build is green again and the deploy went out before lunch. "
    "Naïve caching strikes again #t1a2b3c4-42";

}  // namespace micro

#ifdef FEED_MICRO_COUNT_ALLOCS

#include <atomic>
#include <cstddef>

namespace micro {
inline std::atomic<unsigned long> heap_calls{0};
}  // namespace micro

extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void* __libc_memalign(std::size_t, std::size_t);
void __libc_free(void*);

void* malloc(std::size_t n) {
  micro::heap_calls.fetch_add(1, std::memory_order_relaxed);
  return __libc_malloc(n);
}
void* calloc(std::size_t a, std::size_t b) {
  micro::heap_calls.fetch_add(1, std::memory_order_relaxed);
  return __libc_calloc(a, b);
}
void* realloc(void* p, std::size_t n) {
  micro::heap_calls.fetch_add(1, std::memory_order_relaxed);
  return __libc_realloc(p, n);
}
void* memalign(std::size_t a, std::size_t n) {
  micro::heap_calls.fetch_add(1, std::memory_order_relaxed);
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

namespace micro {

// Heap calls this process has made so far.
inline unsigned long allocs() { return heap_calls.load(std::memory_order_relaxed); }

// Returns f(), adding the heap calls it made to `total`.
template <class F>
decltype(auto) counted(unsigned long& total, F&& f) {
  struct adder {
    unsigned long& total;
    unsigned long before = allocs();
    ~adder() { total += allocs() - before; }
  } add{total};
  return std::forward<F>(f)();
}

// Sets the counter `name` (e.g. "allocs/msg") to heap calls per item, and
// the items processed (items_per_second).
inline void report_allocs(benchmark::State& state, const char* name, unsigned long allocs, std::int64_t items) {
  state.counters[name] = double(allocs) / double(items);
  state.SetItemsProcessed(items);
}

// The benchmark loop, op() once per iteration, with the heap calls of the
// whole loop reported per iteration as `name`.
template <class Op>
void count_loop(benchmark::State& state, const char* name, Op op) {
  const auto before = allocs();
  for (auto _ : state) op();
  report_allocs(state, name, allocs() - before, static_cast<std::int64_t>(state.iterations()));
}

}  // namespace micro

#endif  // FEED_MICRO_COUNT_ALLOCS
