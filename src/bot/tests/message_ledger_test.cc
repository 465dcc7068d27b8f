#include "bot/message_ledger.h"

#include <gtest/gtest.h>

namespace feed::bot {
namespace {

using state = message_ledger::state;
using id_seen = message_ledger::id_seen;

TEST(MessageLedger, EachMessageEndsInOneState) {
  message_ledger l;
  for (std::uint64_t i = 0; i < 5; ++i) l.mark_sent(i, 1000 + static_cast<std::int64_t>(i));
  l.mark_accepted(0);
  l.mark_failed(1);
  l.mark_unknown(2);
  l.mark_unknown(2);  // counted once
  // 3 stays "sent" (in flight at the end); 4 retried, then accepted.
  l.mark_sent(4, 2000);
  l.mark_accepted(4);
  EXPECT_EQ(l.get(0), state::accepted);
  EXPECT_EQ(l.get(1), state::failed);
  EXPECT_EQ(l.get(2), state::unknown);
  EXPECT_EQ(l.get(3), state::sent);
  EXPECT_EQ(l.get(5), state::unsent);
  EXPECT_EQ(l.accepted_count(), 2u);
  EXPECT_EQ(l.unknown_count(), 1u);
  EXPECT_EQ(l.bits(state::accepted), std::vector<std::uint64_t>{0b10001});
  EXPECT_EQ(l.bits(state::unknown), std::vector<std::uint64_t>{0b00100});
  EXPECT_EQ(l.accepted_bits(), l.bits(state::accepted));
  EXPECT_EQ(*l.sent_ns(4), 2000);
  EXPECT_FALSE(l.sent_ns(5));
}

TEST(MessageLedger, UnknownAndFailedOnlyFollowSent) {
  message_ledger l;
  l.mark_unknown(7);  // never sent: no block, nothing happens
  EXPECT_EQ(l.get(7), state::unsent);
  l.mark_sent(8, 1);
  l.mark_accepted(8);
  l.mark_unknown(8);  // a 2xx is final
  l.mark_failed(8);
  EXPECT_EQ(l.get(8), state::accepted);
  EXPECT_EQ(l.unknown_count(), 0u);
}

TEST(MessageLedger, SecondIdForOneMessageIsAContentDuplicate) {
  message_ledger l;
  l.mark_sent(3, 1);
  l.mark_sent(70000, 1);  // another block
  EXPECT_EQ(l.note_id(3, 111), id_seen::first);
  EXPECT_EQ(l.note_id(3, 111), id_seen::same);
  EXPECT_EQ(l.note_id(3, 222), id_seen::other);
  EXPECT_EQ(l.note_id(3, 222), id_seen::other);  // still one message stored twice
  EXPECT_EQ(l.note_id(70000, 222), id_seen::first);
  EXPECT_EQ(l.content_duplicates(), 1u);
}

TEST(MessageLedger, IdsOfUnsentMessagesAreNotKept) {
  message_ledger l;
  EXPECT_EQ(l.note_id(5, 1), id_seen::first);
  EXPECT_EQ(l.note_id(5, 2), id_seen::first);
  EXPECT_EQ(l.content_duplicates(), 0u);
}

}  // namespace
}  // namespace feed::bot
