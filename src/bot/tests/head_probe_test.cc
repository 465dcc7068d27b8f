#include "bot/head_probe.h"

#include <gtest/gtest.h>

namespace feed::bot {
namespace {

TEST(HeadProbe, NewestSeqOfAListPage) {
  EXPECT_EQ(newest_seq_in_page(R"({"messages":[{"id":"a","user_id":"u","seq":42},{"seq":41}],"next_before":41})"),
            42);
  EXPECT_EQ(newest_seq_in_page(R"({"messages":[],"next_before":null})"), 0);
}

TEST(HeadProbe, AnythingElseIsUnknown) {
  for (const auto* body : {"", "not json", "[]", R"({"error":"not found"})", R"({"messages":{}})",
                           R"({"messages":[{"id":"a"}]})", R"({"messages":[{"seq":"7"}]})",
                           R"({"messages":[{"seq":-1}]})", R"({"messages":[1]})"}) {
    EXPECT_FALSE(newest_seq_in_page(body)) << body;
  }
}

}  // namespace
}  // namespace feed::bot
