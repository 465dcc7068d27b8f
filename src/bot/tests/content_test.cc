#include "bot/content.h"

#include <set>

#include <gtest/gtest.h>

namespace feed::bot {
namespace {

TEST(Content, CarriesItsTokenAndIsDeterministic) {
  const auto prefix = token_prefix("0badcafe");
  EXPECT_EQ(prefix, "#t0badcafe-");
  std::string a, b;
  make_content(a, 7, 12345, 0, prefix);
  make_content(b, 7, 12345, 0, prefix);
  EXPECT_EQ(a, b);
  EXPECT_EQ(find_token(a, prefix), 12345u);
  EXPECT_TRUE(a.ends_with(" #t0badcafe-12345"));
}

TEST(Content, VariesBetweenMessages) {
  std::set<std::string> texts;
  for (std::uint64_t i = 0; i < 50; ++i) {
    std::string s;
    make_content(s, 1, i, 0, "#t-");
    texts.insert(s.substr(0, s.rfind(" #t-")));
  }
  EXPECT_GT(texts.size(), 45u);
}

TEST(Content, StaysWithinLimitsAndValidUtf8) {
  for (std::size_t size : {0u, 1u, 20u, 64u, 140u, 279u, 280u}) {
    for (std::uint64_t i = 0; i < 300; ++i) {
      std::string s;
      make_content(s, 99, i * 7919, size, "#tdeadbeef-");
      ASSERT_LE(count_code_points(s), kMaxContentCodePoints) << size << " " << i;
      if (size >= 40) {
        EXPECT_LE(s.size(), size);
        EXPECT_GE(s.size() + 8, size) << s;  // word/UTF-8 boundaries cost a few bytes
      }
      for (unsigned char c : s) ASSERT_TRUE(c >= 0x20 && c != '"' && c != '\\') << s;
      ASSERT_EQ(find_token(s, "#tdeadbeef-"), i * 7919);
      // No truncated multi-byte sequence: every lead byte has its continuations.
      for (std::size_t k = 0; k < s.size();) {
        const auto c = static_cast<unsigned char>(s[k]);
        const std::size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : 4;
        ASSERT_LE(k + len, s.size()) << s;
        for (std::size_t j = 1; j < len; ++j) ASSERT_EQ(static_cast<unsigned char>(s[k + j]) & 0xC0, 0x80) << s;
        k += len;
      }
    }
  }
}

TEST(Content, FindTokenIgnoresOtherRunsAndJunk) {
  EXPECT_FALSE(find_token(R"({"content":"hello #tcafe0000-12"})", "#t0badcafe-"));
  EXPECT_FALSE(find_token("#t0badcafe-x #t0badcafe-", "#t0badcafe-"));
  EXPECT_EQ(find_token("#t0badcafe- then #t0badcafe-77\"}", "#t0badcafe-"), 77u);
}

TEST(Content, PostBodyIsJson) {
  std::string body;
  make_post_body(body, "user_2", "hi there");
  EXPECT_EQ(body, R"({"user_id":"user_2","content":"hi there"})");
}

TEST(Content, RunIdsAreEightHexDigits) {
  const auto id = make_run_id(123);
  EXPECT_EQ(id.size(), 8u);
  EXPECT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_NE(make_run_id(124), id);
}

TEST(Content, FindsTheMessageIdOfAnEventOrA503) {
  EXPECT_EQ(find_message_id(R"({"id":"0b1e-7","user_id":"user_1","content":"x"})"), "0b1e-7");
  EXPECT_EQ(find_message_id(R"({"error":"the outcome is unknown", "id" : "abc"})"), "abc");
  // "user_id" is not "id"; quotes inside strings are escaped, so content
  // cannot forge one.
  EXPECT_FALSE(find_message_id(R"({"user_id":"u","content":"say \"id\":\"x\""})"));
  EXPECT_FALSE(find_message_id(R"({"error":"the message was not stored"})"));
  EXPECT_FALSE(find_message_id(R"({"id":7})"));
  EXPECT_FALSE(find_message_id(R"({"id":"unterminated)"));
}

TEST(Content, IdHashIsNeverZeroAndTellsIdsApart) {
  EXPECT_NE(id_hash(""), 0u);
  EXPECT_NE(id_hash("00000000-0000-4000-8000-000000000001"), id_hash("00000000-0000-4000-8000-000000000002"));
  EXPECT_EQ(id_hash("abc"), id_hash("abc"));
}

}  // namespace
}  // namespace feed::bot
