#include "broadcast/sequencer.h"

#include <gtest/gtest.h>

namespace feed {
namespace {

message m(std::int64_t seq) { return message{"id" + std::to_string(seq), "u", "c", now_utc(), seq_t{seq}}; }

std::vector<std::int64_t> seqs(const std::vector<message>& v) {
  std::vector<std::int64_t> out;
  for (auto& x : v) out.push_back(x.seq.value());
  return out;
}

TEST(Sequencer, PassesAnInOrderRunThrough) {
  sequencer s(seq_t{0});
  EXPECT_EQ(seqs(s.push({m(1), m(2), m(3)})), (std::vector<std::int64_t>{1, 2, 3}));
  EXPECT_EQ(s.last().value(), 3);
  EXPECT_FALSE(s.hole());
}

TEST(Sequencer, ABatchThatIsNotExactlyTheNextRunTakesTheGeneralPath) {
  sequencer s(seq_t{0});
  // Out of order within the batch, a duplicate inside it, a hole inside it,
  // a batch starting behind the last delivered seq: same answers as ever.
  EXPECT_EQ(seqs(s.push({m(2), m(1), m(3)})), (std::vector<std::int64_t>{1, 2, 3}));
  EXPECT_EQ(seqs(s.push({m(4), m(4), m(5)})), (std::vector<std::int64_t>{4, 5}));
  EXPECT_EQ(seqs(s.push({m(5), m(6), m(7)})), (std::vector<std::int64_t>{6, 7}));
  EXPECT_EQ(seqs(s.push({m(8), m(10)})), (std::vector<std::int64_t>{8}));
  ASSERT_TRUE(s.hole());
  // An in-order run that does not touch the hole waits behind it.
  EXPECT_TRUE(s.push({m(11), m(12)}).empty());
  EXPECT_EQ(s.pending(), 3u);
  // The run that fills the hole releases everything held.
  EXPECT_EQ(seqs(s.push({m(9)})), (std::vector<std::int64_t>{9, 10, 11, 12}));
  EXPECT_FALSE(s.hole());
  EXPECT_EQ(seqs(s.push({m(13), m(14)})), (std::vector<std::int64_t>{13, 14}));
  EXPECT_TRUE(s.push({}).empty());
  EXPECT_EQ(s.last().value(), 14);
}

TEST(Sequencer, AnInOrderRunKeepsItsMessages) {
  sequencer s(seq_t{41});
  std::vector<message> batch{m(42), m(43)};
  batch[1].content = std::string(1000, 'x');
  const auto out = s.push(batch);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0], batch[0]);
  EXPECT_EQ(out[1], batch[1]);
}

TEST(Sequencer, HoldsBackUntilTheHoleFills) {
  sequencer s(seq_t{10});
  EXPECT_TRUE(s.push({m(13), m(12)}).empty());
  ASSERT_TRUE(s.hole());
  EXPECT_EQ(s.hole()->first.value(), 11);
  EXPECT_EQ(s.hole()->last.value(), 11);
  EXPECT_EQ(seqs(s.push({m(11)})), (std::vector<std::int64_t>{11, 12, 13}));
  EXPECT_FALSE(s.hole());
}

TEST(Sequencer, DropsDuplicatesDeliveredOrPending) {
  sequencer s(seq_t{0});
  EXPECT_EQ(seqs(s.push({m(1), m(1), m(2)})), (std::vector<std::int64_t>{1, 2}));
  EXPECT_TRUE(s.push({m(2), m(1)}).empty());
  EXPECT_TRUE(s.push({m(4), m(4)}).empty());
  EXPECT_EQ(s.pending(), 1u);
  EXPECT_EQ(seqs(s.push({m(3), m(4)})), (std::vector<std::int64_t>{3, 4}));
}

TEST(Sequencer, GivesUpOnAHoleOnlyPastTheBound) {
  sequencer s(seq_t{0}, 2);
  s.push({m(3), m(4)});
  EXPECT_TRUE(s.give_up_on_hole().empty());
  s.push({m(5)});
  EXPECT_EQ(seqs(s.give_up_on_hole()), (std::vector<std::int64_t>{3, 4, 5}));
  EXPECT_TRUE(s.push({m(1), m(2)}).empty());  // too late: already skipped
}

}  // namespace
}  // namespace feed
