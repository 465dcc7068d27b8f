// The in-process queue (queue/memory): what a post costs it on the way
// through (enqueue, then the worker's poll), and what withdrawing costs
// when every waiting post times out at once, as when the store stalls with
// the queue full. Withdrawals run oldest first, as the posts' waits end.
//
//   memory_queue_micro --benchmark_filter=Withdraw
#include <string>
#include <vector>

#include "harness.h"

#include "model/message_id.h"
#include "queue/memory/memory_queue.h"

namespace {

feed::message post(std::string id) {
  return feed::message{std::move(id), "user_42", micro::sample_content, feed::now_utc(), feed::seq_t{0}};
}

// One iteration: `range(0)` posts enqueued, then each withdrawn; the time
// per post is reported.
void BM_WithdrawEveryPost(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  std::vector<std::string> ids;
  for (std::size_t i = 0; i < n; ++i) ids.push_back(feed::random_message_id());
  for (auto _ : state) {
    state.PauseTiming();
    feed::memory_queue q(n);
    for (const auto& id : ids) q.enqueue(post(id), [](std::error_code) {});
    state.ResumeTiming();
    for (const auto& id : ids) benchmark::DoNotOptimize(q.withdraw(id));
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * n));
}
BENCHMARK(BM_WithdrawEveryPost)->Arg(1000)->Arg(10000)->Arg(30000)->Unit(benchmark::kMillisecond);

// One iteration: 256 posts enqueued, polled in one batch and committed.
void BM_EnqueuePollCommit(benchmark::State& state) {
  feed::memory_queue q(10000);
  std::vector<std::string> ids;
  for (int i = 0; i < 256; ++i) ids.push_back(feed::random_message_id());
  for (auto _ : state) {
    for (const auto& id : ids) q.enqueue(post(id), [](std::error_code) {});
    auto b = q.poll(256, std::chrono::milliseconds(0));
    benchmark::DoNotOptimize(q.commit(*b));
  }
  state.SetItemsProcessed(state.iterations() * 256);
}
BENCHMARK(BM_EnqueuePollCommit);

}  // namespace

BENCHMARK_MAIN();
