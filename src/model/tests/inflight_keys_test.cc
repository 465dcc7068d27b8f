#include "model/inflight_keys.h"

#include <gtest/gtest.h>

namespace feed {
namespace {

TEST(InflightKeys, RefusesOtherContentUntilReleased) {
  inflight_keys keys(8);
  using o = inflight_keys::outcome;
  EXPECT_EQ(keys.acquire("id1", "hello"), o::registered);
  EXPECT_EQ(keys.acquire("id1", "other"), o::conflict);
  EXPECT_EQ(keys.acquire("id1", "hello"), o::registered);  // an identical retry in flight
  EXPECT_EQ(keys.acquire("id2", "other"), o::registered);
  keys.release("id1");
  EXPECT_EQ(keys.acquire("id1", "other"), o::conflict);  // the retry still holds it
  keys.release("id1");
  EXPECT_EQ(keys.acquire("id1", "other"), o::registered);
  keys.release("id1");
  keys.release("id2");
  EXPECT_EQ(keys.size(), 0u);
}

// An identical post that was stored is remembered while any holder is
// left, so a twin whose wait ran out can be told it is stored.
TEST(InflightKeys, RemembersAStoredTwinWhileHeld) {
  inflight_keys keys(8);
  keys.acquire("id", "hello");
  keys.acquire("id", "hello");
  EXPECT_FALSE(keys.stored("id"));
  keys.release("id", true);
  EXPECT_TRUE(keys.stored("id"));
  ASSERT_TRUE(keys.hold("id"));
  keys.release("id");  // the twin's own settling
  EXPECT_TRUE(keys.stored("id")) << "held across it";
  keys.release("id");
  EXPECT_FALSE(keys.stored("id"));
  EXPECT_FALSE(keys.hold("id"));
  EXPECT_EQ(keys.size(), 0u);
}

TEST(InflightKeys, IsBounded) {
  inflight_keys keys(2);
  using o = inflight_keys::outcome;
  EXPECT_EQ(keys.acquire("a", "x"), o::registered);
  EXPECT_EQ(keys.acquire("b", "x"), o::registered);
  EXPECT_EQ(keys.acquire("c", "x"), o::unguarded);
  EXPECT_EQ(keys.acquire("a", "y"), o::conflict);  // held entries are still checked
  keys.release("a");
  EXPECT_EQ(keys.acquire("c", "x"), o::registered);
}

}  // namespace
}  // namespace feed
