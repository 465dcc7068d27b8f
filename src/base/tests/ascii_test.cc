#include "base/ascii.h"

#include <algorithm>
#include <memory>
#include <string>

#include <gtest/gtest.h>

namespace feed {
namespace {

TEST(Ascii, EqualIgnoringLetterCaseOnly) {
  EXPECT_TRUE(ascii_iequals("Keep-Alive", "keep-alive"));
  EXPECT_TRUE(ascii_iequals("", ""));
  EXPECT_FALSE(ascii_iequals("keep-alive", "keep-aliv"));
  EXPECT_FALSE(ascii_iequals("a", "b"));
  // Only A-Z fold: '@' and '`' sit beside the letters; bytes past ASCII never fold.
  EXPECT_FALSE(ascii_iequals("@", "`"));
  EXPECT_FALSE(ascii_iequals("[", "{"));
  EXPECT_FALSE(ascii_iequals("\xC3\x89", "\xC3\xA9"));
  for (int c = 0; c < 256; ++c) {
    const char x = static_cast<char>(c);
    const bool letter = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
    EXPECT_EQ(ascii_lower(x) != x, c >= 'A' && c <= 'Z') << c;
    if (letter) {
      EXPECT_TRUE(ascii_iequals(std::string(1, x), std::string(1, static_cast<char>(c ^ 0x20)))) << c;
    }
  }
}

// Exactly sized heap copies, so that ASan sees any read past either end:
// the case in which Boost 1.81's iequals read one byte too far.
TEST(Ascii, ReadsNothingPastTheEnd) {
  for (const auto& [a, b] : {std::pair{"applicaTion/json", "application/json"}, {"X", "x"}, {"abC", "abc"}}) {
    const std::string sa(a), sb(b);
    auto ha = std::make_unique<char[]>(sa.size()), hb = std::make_unique<char[]>(sb.size());
    std::copy(sa.begin(), sa.end(), ha.get());
    std::copy(sb.begin(), sb.end(), hb.get());
    EXPECT_TRUE(ascii_iequals({ha.get(), sa.size()}, {hb.get(), sb.size()}));
  }
}

}  // namespace
}  // namespace feed
