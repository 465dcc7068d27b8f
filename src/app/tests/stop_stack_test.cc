#include "app/stop_stack.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace feed {
namespace {

TEST(StopStack, RunsActionsInReverseOrderOfPush) {
  std::vector<std::string> ran;
  stop_stack s;
  s.push([&] { ran.push_back("loops"); });
  s.push([&] { ran.push_back("server"); });
  s.push([&] { ran.push_back("worker"); });
  s.run();
  EXPECT_EQ(ran, (std::vector<std::string>{"worker", "server", "loops"}));
  EXPECT_TRUE(s.empty());
}

TEST(StopStack, RunsEachActionOnce) {
  int runs = 0;
  stop_stack s;
  s.push([&] { ++runs; });
  s.run();
  s.run();
  EXPECT_EQ(runs, 1);
}

TEST(StopStack, DestructorStopsWhatAFailedStartLeft) {
  std::vector<std::string> ran;
  {
    stop_stack s;
    s.push([&] { ran.push_back("first"); });
    s.push([&] { ran.push_back("second"); });
    // A start-up step failing here returns early; nothing calls run().
  }
  EXPECT_EQ(ran, (std::vector<std::string>{"second", "first"}));
}

TEST(StopStack, ActionThatRunsTheStackAgainDoesNotRepeatItself) {
  std::vector<std::string> ran;
  stop_stack s;
  s.push([&] { ran.push_back("outer"); });
  s.push([&] {
    ran.push_back("inner");
    s.run();
  });
  s.run();
  EXPECT_EQ(ran, (std::vector<std::string>{"inner", "outer"}));
}

TEST(StopStack, PushAfterRunIsStoppedByTheNextRun) {
  std::vector<int> ran;
  stop_stack s;
  s.push([&] { ran.push_back(1); });
  s.run();
  s.push([&] { ran.push_back(2); });
  EXPECT_EQ(s.size(), 1u);
  s.run();
  EXPECT_EQ(ran, (std::vector<int>{1, 2}));
}

}  // namespace
}  // namespace feed
