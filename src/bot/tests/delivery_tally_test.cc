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

TEST(DeliveryTally, CompleteInOrderStreamIsClean) {
  delivery_tally t;
  for (std::uint64_t i = 0; i < 200; ++i) EXPECT_EQ(t.record(i, 1000 + i, true), delivery_tally::outcome::first);
  std::vector<std::uint64_t> accepted(4, ~std::uint64_t{0});
  accepted[3] = (std::uint64_t{1} << 8) - 1;  // 0..199
  verify_totals v;
  t.tally_into(accepted, 200, v);
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
  verify_totals v;
  t.tally_into(bits_of({0, 1, 2, 3}), 4, v);
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

  verify_totals v;
  all.tally_into(accepted, 5, v);
  half.tally_into(accepted, 5, v);
  none.tally_into(accepted, 5, v);
  EXPECT_EQ(v.subscribers, 3u);
  EXPECT_EQ(v.expected, 15u);
  EXPECT_EQ(v.received, 7u);
  EXPECT_EQ(v.missing, 8u);
  EXPECT_EQ(v.duplicated, 1u);
  EXPECT_EQ(v.subscribers_incomplete, 2u);
  EXPECT_EQ(v.unexpected, 0u);
}

TEST(DeliveryTally, ReceivedBeyondAcceptedRangeIsUnexpected) {
  delivery_tally t;
  t.record(500, 1, true);  // the accepted set is shorter than the received bitset
  verify_totals v;
  t.tally_into(bits_of({0}), 1, v);
  EXPECT_EQ(v.missing, 1u);
  EXPECT_EQ(v.unexpected, 1u);
}

}  // namespace
}  // namespace feed::bot
