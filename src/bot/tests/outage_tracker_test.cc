#include "bot/outage_tracker.h"

#include <gtest/gtest.h>

namespace feed::bot {
namespace {

using namespace std::chrono_literals;

outage_tracker::time_point at(std::chrono::milliseconds ms) { return outage_tracker::time_point{} + ms; }

TEST(OutageTracker, NothingFailedNothingReported) {
  outage_tracker t;
  t.success(at(1000ms));
  t.success(at(2000ms));
  t.finish(at(3000ms));
  EXPECT_EQ(t.longest(), outage_tracker::duration{0});
  EXPECT_EQ(t.outages(), 0u);
  EXPECT_FALSE(t.open());
}

TEST(OutageTracker, RunsFromFirstFailureToNextSuccess) {
  outage_tracker t;
  t.success(at(0ms));
  t.failure(at(1000ms));
  t.failure(at(2500ms));
  EXPECT_TRUE(t.open());
  EXPECT_EQ(*t.open_since(), at(1000ms));
  t.success(at(5000ms));
  EXPECT_FALSE(t.open());
  EXPECT_EQ(t.longest(), 4000ms);
  EXPECT_EQ(t.outages(), 1u);
}

TEST(OutageTracker, KeepsTheLongest) {
  outage_tracker t;
  t.failure(at(0ms));  // before any success: open all the same
  t.success(at(300ms));
  t.failure(at(1000ms));
  t.success(at(3000ms));
  t.failure(at(4000ms));
  t.success(at(4100ms));
  EXPECT_EQ(t.longest(), 2000ms);
  EXPECT_EQ(t.outages(), 3u);
  EXPECT_DOUBLE_EQ(t.longest_s(), 2.0);
}

TEST(OutageTracker, FailuresDatedBeforeTheLastSuccessAreIgnored) {
  // A slow request sent at 1 s fails at 9 s; one sent at 2 s succeeded at
  // 2.1 s: the target was up after the first was sent.
  outage_tracker t;
  t.success(at(2100ms));
  t.failure(at(1000ms));
  EXPECT_FALSE(t.open());
  EXPECT_FALSE(t.last_failure());
}

TEST(OutageTracker, LateReportsMoveTheStartBack) {
  outage_tracker t;
  t.success(at(0ms));
  t.failure(at(3000ms));
  t.failure(at(2000ms));  // reported after the later one
  t.success(at(6000ms));
  EXPECT_EQ(t.longest(), 4000ms);
}

TEST(OutageTracker, FinishClosesAnOpenOutage) {
  outage_tracker t;
  t.failure(at(1000ms));
  t.failure(at(2000ms));
  EXPECT_EQ(*t.last_failure(), at(2000ms));
  t.finish(at(7000ms));
  EXPECT_FALSE(t.open());
  EXPECT_EQ(t.longest(), 6000ms);
  EXPECT_EQ(t.outages(), 1u);
  t.finish(at(9000ms));  // nothing open: nothing changes
  EXPECT_EQ(t.longest(), 6000ms);
}

TEST(OutageTracker, FinishBeforeTheStartCountsZero) {
  outage_tracker t;
  t.failure(at(5000ms));
  t.finish(at(4000ms));
  EXPECT_EQ(t.longest(), outage_tracker::duration{0});
}

}  // namespace
}  // namespace feed::bot
