#include "bot/delivery_tally.h"

#include <gtest/gtest.h>

namespace feed::bot {
namespace {

std::vector<std::uint64_t> bits_of(std::initializer_list<std::uint64_t> accepted) {
  std::vector<std::uint64_t> bits;
  for (auto i : accepted) {
    if (i / 64 >= bits.size()) bits.resize(i / 64 + 1, 0);
    bits[i / 64] |= std::uint64_t{1} << (i % 64);
  }
  return bits;
}

// Judges `tallies` against `accepted` (with `unknown` of unknown outcome).
verify_totals judge(const std::vector<std::uint64_t>& accepted, std::uint64_t accepted_count,
                    std::initializer_list<const delivery_tally*> tallies,
                    const std::vector<std::uint64_t>& unknown = {}) {
  delivery_verdict v(accepted, accepted_count, unknown);
  for (const auto* t : tallies) v.add(*t);
  return v.totals();
}

TEST(DeliveryTally, CompleteInOrderStreamIsClean) {
  delivery_tally t;
  for (std::uint64_t i = 0; i < 200; ++i) EXPECT_EQ(t.record(i, 1000 + i, true), delivery_tally::outcome::first);
  std::vector<std::uint64_t> accepted(4, ~std::uint64_t{0});
  accepted[3] = (std::uint64_t{1} << 8) - 1;  // 0..199
  const auto v = judge(accepted, 200, {&t});
  EXPECT_EQ(v.expected, 200u);
  EXPECT_EQ(v.received, 200u);
  EXPECT_EQ(v.missing, 0u);
  EXPECT_EQ(v.duplicated, 0u);
  EXPECT_EQ(v.out_of_order, 0u);
  EXPECT_EQ(v.unexpected, 0u);
  EXPECT_EQ(v.subscribers_incomplete, 0u);
}

TEST(DeliveryTally, MissingDuplicateOutOfOrderUnexpected) {
  delivery_tally t;
  EXPECT_EQ(t.record(0, 10, true), delivery_tally::outcome::first);
  EXPECT_EQ(t.record(2, 12, true), delivery_tally::outcome::first);
  EXPECT_EQ(t.record(2, 12, true), delivery_tally::outcome::duplicate);
  EXPECT_EQ(t.record(3, 11, true), delivery_tally::outcome::first);  // seq 11 after 12: out of order
  EXPECT_EQ(t.record(5, 14, true), delivery_tally::outcome::first);  // sent but never accepted
  EXPECT_EQ(t.record(999, 15, false), delivery_tally::outcome::foreign);
  // Accepted: 0, 1, 2, 3 ; message 1 never arrived.
  const auto v = judge(bits_of({0, 1, 2, 3}), 4, {&t});
  EXPECT_EQ(v.expected, 4u);
  EXPECT_EQ(v.received, 3u);
  EXPECT_EQ(v.missing, 1u);
  EXPECT_EQ(v.duplicated, 1u);
  EXPECT_EQ(v.out_of_order, 1u);
  EXPECT_EQ(v.unexpected, 2u);  // 5 (not accepted) and 999 (never sent)
  EXPECT_EQ(v.subscribers_incomplete, 1u);
}

TEST(DeliveryTally, OrderIsBySeqNotByMessageNumber) {
  // Concurrent posts may be sequenced in any order; only seq order matters.
  delivery_tally t;
  t.record(7, 100, true);
  t.record(3, 101, true);
  t.record(5, 102, true);
  EXPECT_EQ(t.out_of_order(), 0u);
  t.record(4, 99, true);
  EXPECT_EQ(t.out_of_order(), 1u);
}

TEST(DeliveryTally, EventsWithoutSeqAreNotJudgedForOrder) {
  delivery_tally t;
  t.record(1, 50, true);
  t.record(2, std::nullopt, true);
  t.record(3, 51, true);
  EXPECT_EQ(t.out_of_order(), 0u);
  EXPECT_EQ(t.unique(), 3u);
}

TEST(DeliveryTally, SumsAcrossSubscribers) {
  const auto accepted = bits_of({0, 1, 2, 70, 130});
  delivery_tally all;
  for (std::uint64_t i : {0, 1, 2, 70, 130}) all.record(i, i, true);
  delivery_tally half;
  half.record(0, 0, true);
  half.record(70, 70, true);
  half.record(70, 70, true);
  delivery_tally none;

  const auto v = judge(accepted, 5, {&all, &half, &none});
  EXPECT_EQ(v.subscribers, 3u);
  EXPECT_EQ(v.expected, 15u);
  EXPECT_EQ(v.received, 7u);
  EXPECT_EQ(v.missing, 8u);
  EXPECT_EQ(v.duplicated, 1u);
  EXPECT_EQ(v.subscribers_incomplete, 2u);
  EXPECT_EQ(v.unexpected, 0u);
  EXPECT_EQ(v.lost, 5u);  // every message is missing at `none`
  EXPECT_EQ(v.lost_max_per_subscriber, 5u);
}

TEST(DeliveryTally, ReceivedBeyondAcceptedRangeIsUnexpected) {
  delivery_tally t;
  t.record(500, 1, true);  // the accepted set is shorter than the received bitset
  const auto v = judge(bits_of({0}), 1, {&t});
  EXPECT_EQ(v.missing, 1u);
  EXPECT_EQ(v.unexpected, 1u);
}

TEST(DeliveryTally, OrderIsJudgedAgainstThePreviousSeq) {
  // One late event counts once, not once per event it overtook.
  delivery_tally t;
  for (const auto& [i, seq] : {std::pair<std::uint64_t, std::uint64_t>{0, 1}, {1, 2}, {2, 5}, {3, 3}, {4, 4}, {5, 6}}) {
    t.record(i, seq, true);
  }
  EXPECT_EQ(t.out_of_order(), 1u);
  // A seq equal to the previous one is not greater: out of order.
  t.record(6, 6, true);
  EXPECT_EQ(t.out_of_order(), 2u);
  // A duplicate is a duplicate, not also out of order.
  t.record(2, 5, true);
  EXPECT_EQ(t.out_of_order(), 2u);
  EXPECT_EQ(t.duplicates(), 1u);
}

TEST(DeliveryTally, HasAnswersForReceivedMessagesOnly) {
  delivery_tally t;
  t.record(130, 1, true);
  EXPECT_TRUE(t.has(130));
  EXPECT_FALSE(t.has(129));
  EXPECT_FALSE(t.has(100000));
}

TEST(DeliveryVerdict, LostCountsEachMessageOnceOverSubscribers) {
  const auto accepted = bits_of({0, 1, 2, 3});
  delivery_tally a;  // misses 1
  for (std::uint64_t i : {0, 2, 3}) a.record(i, i + 1, true);
  delivery_tally b;  // misses 1 and 2
  for (std::uint64_t i : {0, 3}) b.record(i, i + 1, true);
  const auto v = judge(accepted, 4, {&a, &b});
  EXPECT_EQ(v.missing, 3u);
  EXPECT_EQ(v.lost, 2u);
  EXPECT_EQ(v.lost_max_per_subscriber, 2u);
  EXPECT_EQ(v.subscribers_incomplete, 2u);
}

TEST(DeliveryVerdict, UnknownOutcomeIsNeitherLostNorUnexpected) {
  // 0 accepted; 1, 2, 3 of unknown outcome; 4 failed for sure.
  const auto accepted = bits_of({0});
  const auto unknown = bits_of({1, 2, 3});
  delivery_tally a;
  for (std::uint64_t i : {0, 1, 2}) a.record(i, i + 1, true);
  delivery_tally b;
  for (std::uint64_t i : {0, 1, 4}) b.record(i, i + 1, true);
  const auto v = judge(accepted, 1, {&a, &b}, unknown);
  EXPECT_EQ(v.lost, 0u);
  EXPECT_EQ(v.missing, 0u);
  EXPECT_EQ(v.unknown_delivered, 2u);  // 1 and 2 appeared; 3 never did, and that is fine
  EXPECT_EQ(v.unknown_partial, 1u);    // 2 reached a but not b
  EXPECT_EQ(v.unexpected, 1u);         // 4 was answered as not stored, yet appeared
}

TEST(DeliveryVerdict, UnknownOutcomeRepeatedIsStillADuplicate) {
  delivery_tally t;
  t.record(1, 1, true);
  t.record(1, 1, true);
  const auto v = judge({}, 0, {&t}, bits_of({1}));
  EXPECT_EQ(v.duplicated, 1u);
  EXPECT_EQ(v.unexpected, 0u);
  EXPECT_EQ(v.unknown_delivered, 1u);
}

TEST(DeliveryVerdict, NoSubscribersNoFigures) {
  const auto v = judge(bits_of({0, 1}), 2, {}, bits_of({2}));
  EXPECT_EQ(v.subscribers, 0u);
  EXPECT_EQ(v.lost, 0u);
  EXPECT_EQ(v.unknown_delivered, 0u);
  EXPECT_EQ(v.unknown_partial, 0u);
}

}  // namespace
}  // namespace feed::bot
