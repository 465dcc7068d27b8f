#include "model/inflight_keys.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace feed {
namespace {

message stored_message(std::string id) {
  message m;
  m.id = std::move(id);
  return m;
}

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
  keys.release("id", {.durable = true, .checked = true});
  EXPECT_TRUE(keys.stored("id"));
  ASSERT_TRUE(keys.hold("id"));
  keys.release("id");  // the twin's own settling
  EXPECT_TRUE(keys.stored("id")) << "held across it";
  keys.release("id");
  EXPECT_TRUE(keys.stored("id")) << "accepted, not seen stored yet";
  keys.seen_stored(std::vector{stored_message("id")});
  EXPECT_FALSE(keys.stored("id"));
  EXPECT_FALSE(keys.hold("id"));
  EXPECT_EQ(keys.size(), 0u);
}

// With Kafka a post is answered 202 once the broker has it, long before the
// worker stores it after a database outage: until the store has it, the
// key's content is known here only.
TEST(InflightKeys, AnAcceptedKeyRefusesOtherContentUntilSeenStored) {
  inflight_keys keys(8);
  using o = inflight_keys::outcome;
  ASSERT_EQ(keys.acquire("id", "first"), o::registered);
  keys.release("id", {.durable = true, .checked = true});
  EXPECT_EQ(keys.acquire("id", "second"), o::taken);
  EXPECT_EQ(keys.acquire("id", "first"), o::accepted) << "a retry of the accepted post";
  keys.seen_stored(std::vector{stored_message("other"), stored_message("id")});
  EXPECT_EQ(keys.size(), 0u);
  EXPECT_EQ(keys.acquire("id", "second"), o::registered) << "the store answers from now on";
}

// A post whose key the store could not check may have other content
// stored under its key already, which the worker keeps: its content is not
// the key's to answer for, but other content must not go ahead either
// while it may still be stored.
TEST(InflightKeys, AnUncheckedDurablePostKeepsThePendingKey) {
  inflight_keys keys(8);
  using o = inflight_keys::outcome;
  keys.acquire("id", "second");
  keys.release("id", {.durable = true});
  EXPECT_EQ(keys.acquire("id", "third"), o::pending);
  EXPECT_EQ(keys.acquire("id", "second"), o::registered) << "the same content goes ahead (to the store lookup)";
  keys.release("id", {.checked = true});
  EXPECT_EQ(keys.acquire("id", "third"), o::taken) << "durable and now checked: the key's first content";
}

// A broker's delivery error may hide a write that lands later.
TEST(InflightKeys, AFailureThatMayStillLandKeepsThePendingKeyUntilSeen) {
  inflight_keys keys(8);
  using o = inflight_keys::outcome;
  keys.acquire("id", "first");
  keys.release("id", {.checked = true, .may_land = true});
  EXPECT_EQ(keys.acquire("id", "other"), o::pending);
  keys.seen_stored("id");
  EXPECT_EQ(keys.acquire("id", "other"), o::registered);
}

TEST(InflightKeys, AFailureThatCannotLandLeavesNothingBehind) {
  inflight_keys keys(8);
  keys.acquire("id", "first");
  keys.release("id", {.checked = true});
  EXPECT_EQ(keys.size(), 0u);
}

// One twin checked, another durable: the content is the key's first and
// the queue has it.
TEST(InflightKeys, TwinsTogetherMakeAnEntryAccepted) {
  inflight_keys keys(8);
  keys.acquire("id", "first");
  keys.acquire("id", "first");
  keys.release("id", {.checked = true});
  keys.release("id", {.durable = true});
  EXPECT_EQ(keys.acquire("id", "other"), inflight_keys::outcome::taken);
}

TEST(InflightKeys, APostNotStoredLeavesNothingBehind) {
  inflight_keys keys(8);
  keys.acquire("id", "first");
  keys.release("id", {});
  EXPECT_EQ(keys.size(), 0u);
  EXPECT_EQ(keys.acquire("id", "second"), inflight_keys::outcome::registered);
}

// The subscriber may see the message stored before the queue's
// acknowledgement settles the post.
TEST(InflightKeys, SeenStoredWhileHeldEndsTheEntryWithItsLastHolder) {
  inflight_keys keys(8);
  keys.acquire("id", "first");
  keys.acquire("id", "first");
  keys.seen_stored(std::vector{stored_message("id")});
  keys.release("id", {.durable = true, .checked = true});
  EXPECT_EQ(keys.acquire("id", "second"), inflight_keys::outcome::conflict) << "one twin still in flight";
  keys.release("id", {.durable = true, .checked = true});
  EXPECT_EQ(keys.size(), 0u);
}

TEST(InflightKeys, AnAcceptedEntryHeldAgainIsAcceptedAgainWhenReleased) {
  inflight_keys keys(8);
  using o = inflight_keys::outcome;
  keys.acquire("id", "first");
  keys.release("id", {.durable = true, .checked = true});
  ASSERT_TRUE(keys.hold("id"));
  EXPECT_EQ(keys.acquire("id", "second"), o::conflict);
  keys.release("id");
  EXPECT_EQ(keys.acquire("id", "second"), o::taken);
}

TEST(InflightKeys, AcceptedEntriesAreForgottenAfterTheirTime) {
  using namespace std::chrono_literals;
  inflight_keys keys(8, 60s);
  const auto t0 = inflight_keys::clock::now();
  keys.acquire("a", "x", t0);
  keys.release("a", {.durable = true, .checked = true}, t0);
  keys.acquire("b", "x", t0 + 30s);
  keys.release("b", {.durable = true, .checked = true}, t0 + 30s);
  EXPECT_EQ(keys.acquire("a", "y", t0 + 59s), inflight_keys::outcome::taken);
  EXPECT_EQ(keys.acquire("a", "y", t0 + 61s), inflight_keys::outcome::registered);
  EXPECT_EQ(keys.acquire("b", "y", t0 + 61s), inflight_keys::outcome::taken);
  EXPECT_EQ(keys.acquire("c", "y", t0 + 91s), inflight_keys::outcome::registered);
  EXPECT_EQ(keys.size(), 2u) << "a (held) and c; b expired";
}

// A full map makes room by forgetting the oldest accepted entry, never one
// in flight.
TEST(InflightKeys, TheOldestAcceptedEntryGivesWayWhenFull) {
  inflight_keys keys(2);
  using o = inflight_keys::outcome;
  keys.acquire("a", "x");
  keys.release("a", {.durable = true, .checked = true});
  keys.acquire("b", "x");
  EXPECT_EQ(keys.acquire("c", "x"), o::registered);
  EXPECT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys.acquire("a", "y"), o::unguarded) << "a forgotten (the store answers for it); b and c in flight";
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
