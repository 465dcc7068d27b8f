#include "queue/kafka/kafka_publisher.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

namespace feed {
namespace {

TEST(DoneSlots, EachDoneIsTakenBackOnceWhateverTheOrderAndSlotsAreReused) {
  done_slots slots;
  std::vector<int> calls(1000, 0);
  for (int round = 0; round < 3; ++round) {
    // More than one chunk in flight at once, given back out of order.
    std::vector<std::pair<void*, int>> held;
    for (int i = 0; i < 1000; ++i) held.emplace_back(slots.put([&calls, i](std::error_code) { ++calls[i]; }), i);
    std::shuffle(held.begin(), held.end(), std::mt19937(round));
    for (auto [opaque, i] : held) {
      const enqueue_done done = slots.take(opaque);
      ASSERT_TRUE(done);
      done({});
    }
  }
  for (int n : calls) EXPECT_EQ(n, 3);
}

TEST(DoneSlots, TakingReleasesWhatTheCallbackHolds) {
  done_slots slots;
  auto held = std::make_shared<int>(7);
  void* opaque = slots.put([held](std::error_code) {});
  const std::weak_ptr<int> watch = held;
  held.reset();
  EXPECT_FALSE(watch.expired());
  slots.take(opaque)({});
  EXPECT_TRUE(watch.expired());
}

}  // namespace
}  // namespace feed
