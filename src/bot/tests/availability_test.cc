#include "bot/availability.h"

#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace feed::bot {
namespace {

using namespace std::chrono_literals;

availability::time_point at(std::chrono::milliseconds ms) { return availability::time_point{} + ms; }

TEST(Availability, OverallOutageEndsWithAnyInstancesTwoHundred) {
  // Instance 0 dies at 1 s; its failed post is retried on instance 1 at 1.2 s.
  availability a(2);
  a.success(0, at(500ms));
  a.failure(0, at(1000ms), true);
  a.success(1, at(1200ms));
  EXPECT_NEAR(a.overall().longest_s, 0.2, 1e-9);
  EXPECT_FALSE(a.overall().open);
  EXPECT_TRUE(a.instance(0).open);
  EXPECT_FALSE(a.instance(1).open);
  // Instance 0 never comes back: unavailable until posting ends.
  a.failure(0, at(3000ms), false);
  a.finish(at(10000ms));
  EXPECT_NEAR(a.instance(0).longest_s, 9.0, 1e-9);
  EXPECT_TRUE(a.instance(0).open) << "down when posting ended: unavailable at the end";
  EXPECT_EQ(a.instance(0).outages, 1u);
  EXPECT_FALSE(a.instance(1).open);
  EXPECT_NEAR(a.overall().longest_s, 0.2, 1e-9);
  EXPECT_FALSE(a.overall().open);
}

TEST(Availability, AnInstanceOutageSaysSinceWhenWhyAndHowLongTheLastOneLasted) {
  availability a(2);
  a.failure(1, at(1000ms), true, "connect: Connection refused");
  a.failure(1, at(1500ms), true, "answered 503");
  auto f = a.instance(1);
  ASSERT_TRUE(f.open_since);
  EXPECT_EQ(*f.open_since, at(1000ms));
  EXPECT_EQ(f.last_failure, "answered 503") << "the last failure is the one named";
  EXPECT_EQ(f.last_closed_s, 0.0) << "none closed yet";
  EXPECT_TRUE(a.instance(0).last_failure.empty()) << "kept per instance";
  a.success(1, at(3250ms));
  f = a.instance(1);
  EXPECT_FALSE(f.open);
  EXPECT_FALSE(f.open_since);
  EXPECT_NEAR(f.last_closed_s, 2.25, 1e-9);
  a.failure(1, at(4000ms), true, "transport error: timeout");
  a.success(1, at(4500ms));
  EXPECT_NEAR(a.instance(1).last_closed_s, 0.5, 1e-9) << "the last outage, not the longest";
  EXPECT_NEAR(a.instance(1).longest_s, 2.25, 1e-9);
}

TEST(Availability, FailuresThatDoNotCountOverallStayPerInstance) {
  availability a(2);
  a.failure(1, at(1000ms), false);  // a refused connect with nothing waiting
  EXPECT_FALSE(a.overall().open);
  EXPECT_TRUE(a.instance(1).open);
}

TEST(Availability, AnOpenOutageShowsItsLengthSoFar) {
  availability a(1);
  a.failure(0, at(1000ms), true);
  a.failure(0, at(4000ms), true);
  const auto f = a.overall();
  EXPECT_TRUE(f.open);
  EXPECT_NEAR(f.longest_s, 3.0, 1e-9);
  EXPECT_EQ(f.outages, 0u);
}

TEST(Availability, EveryoneDownTogether) {
  availability a(2);
  a.success(0, at(0ms));
  a.failure(0, at(1000ms), true);
  a.failure(1, at(1100ms), true);
  a.success(1, at(6000ms));
  EXPECT_NEAR(a.overall().longest_s, 5.0, 1e-9);
  EXPECT_NEAR(a.instance(1).longest_s, 4.9, 1e-9);
}

TEST(Availability, OutOfRangeInstanceIsIgnored) {
  availability a(1);
  a.failure(3, at(1000ms), true);
  EXPECT_TRUE(a.overall().open);
  EXPECT_EQ(a.instance(3).outages, 0u);
}

TEST(Availability, ThreadsMayReportAtOnce) {
  availability a(2);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&a, t] {
      for (int i = 0; i < 1000; ++i) {
        const auto when = at(std::chrono::milliseconds(i * 10 + t));
        if (i % 3 == 0) a.failure(static_cast<std::size_t>(t % 2), when, true);
        else a.success(static_cast<std::size_t>(t % 2), when);
      }
    });
  }
  for (auto& th : threads) th.join();
  a.finish(at(20000ms));
  // Every thread's last report (i = 999) was a failure: down at the end.
  EXPECT_TRUE(a.overall().open);
  EXPECT_TRUE(a.instance(0).open);
  EXPECT_TRUE(a.instance(1).open);
}

}  // namespace
}  // namespace feed::bot
