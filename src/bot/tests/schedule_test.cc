#include "bot/schedule.h"

#include <gtest/gtest.h>

namespace feed::bot {
namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using std::chrono::seconds;

TEST(Schedule, DueTimesAreOpenLoopMultiplesOfTheInterval) {
  const schedule s(4.0, 0, 0);
  EXPECT_EQ(s.due(0), nanoseconds(0));
  EXPECT_EQ(s.due(1), milliseconds(250));
  EXPECT_EQ(s.due(4), seconds(1));
  EXPECT_EQ(s.due(1000), seconds(250));
  EXPECT_FALSE(s.finite());
}

TEST(Schedule, FractionalRate) {
  const schedule s(0.3, 0, 0);  // 3 users every 10 s
  EXPECT_EQ(s.due(3), seconds(10));
  EXPECT_NEAR(static_cast<double>(s.due(1).count()), 3.333333333e9, 1.0);
}

TEST(Schedule, CountLimits) {
  EXPECT_EQ(schedule(100, 7, 0).total(), 7u);
  EXPECT_EQ(schedule(100, 7, 10).total(), 7u);
}

TEST(Schedule, DurationLimitsToDueTimesBeforeTheEnd) {
  EXPECT_EQ(schedule(200, 0, 5).total(), 1000u);  // due 0 .. 4.995 s
  EXPECT_EQ(schedule(3, 0, 1).total(), 3u);       // 0, 1/3, 2/3
  EXPECT_EQ(schedule(0.3, 0, 10).total(), 3u);    // 0, 3.33, 6.67 (10 s is not < 10 s)
  EXPECT_EQ(schedule(0.3, 0, 10.5).total(), 4u);
  EXPECT_EQ(schedule(1000, 0, 2).total(), 2000u);
  EXPECT_EQ(schedule(1000, 500, 2).total(), 500u);
}

TEST(Schedule, DueCountAtBoundaries) {
  const schedule s(10, 0, 0);
  EXPECT_EQ(s.due_count(nanoseconds(-1)), 0u);
  EXPECT_EQ(s.due_count(nanoseconds(0)), 1u);
  EXPECT_EQ(s.due_count(milliseconds(99)), 1u);
  EXPECT_EQ(s.due_count(milliseconds(100)), 2u);
  EXPECT_EQ(s.due_count(seconds(1)), 11u);
  const schedule capped(10, 5, 0);
  EXPECT_EQ(capped.due_count(seconds(100)), 5u);
}

TEST(Schedule, DueCountAgreesWithDueForOddRates) {
  const schedule s(7.3, 0, 0);
  for (std::uint64_t i = 0; i < 2000; ++i) {
    EXPECT_EQ(s.due_count(s.due(i)), i + 1) << i;
    EXPECT_EQ(s.due_count(s.due(i) - nanoseconds(1)), i) << i;
  }
}

TEST(Schedule, LanesPartitionTheIndexes) {
  EXPECT_EQ(schedule::next_in_lane(0, 0, 2), 0u);
  EXPECT_EQ(schedule::next_in_lane(0, 1, 2), 1u);
  EXPECT_EQ(schedule::next_in_lane(5, 1, 3), 7u);
  EXPECT_EQ(schedule::next_in_lane(5, 2, 3), 5u);
  EXPECT_EQ(schedule::next_in_lane(6, 2, 3), 8u);
}

}  // namespace
}  // namespace feed::bot
