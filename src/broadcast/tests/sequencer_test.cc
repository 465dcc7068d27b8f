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
