#include "model/utf8.h"

#include <gtest/gtest.h>

namespace feed {
namespace {

TEST(Utf8, CountsCodePointsNotBytes) {
  EXPECT_EQ(utf8_code_points(""), 0u);
  EXPECT_EQ(utf8_code_points("abc"), 3u);
  EXPECT_EQ(utf8_code_points("h\xC3\xA9llo"), 5u);               // é
  EXPECT_EQ(utf8_code_points("\xE2\x82\xAC"), 1u);                // €
  EXPECT_EQ(utf8_code_points("\xF0\x9F\x98\x80"), 1u);            // 😀
  EXPECT_EQ(utf8_code_points("e\xCC\x81"), 2u);                   // e + combining acute
  EXPECT_EQ(utf8_code_points(std::string_view("a\0b", 3)), 3u);   // NUL is a code point
}

TEST(Utf8, RejectsMalformedSequences) {
  EXPECT_FALSE(utf8_code_points("\x80"));                  // lone continuation byte
  EXPECT_FALSE(utf8_code_points("\xC3"));                  // truncated
  EXPECT_FALSE(utf8_code_points("\xE2\x82"));              // truncated
  EXPECT_FALSE(utf8_code_points("\xC3\x28"));              // bad continuation
  EXPECT_FALSE(utf8_code_points("\xFF"));                  // never valid
  EXPECT_FALSE(utf8_code_points("\xF8\x88\x80\x80\x80"));  // 5-byte form
}

TEST(Utf8, RejectsOverlongForms) {
  EXPECT_FALSE(utf8_code_points("\xC0\xAF"));          // '/' in two bytes
  EXPECT_FALSE(utf8_code_points("\xC1\xBF"));
  EXPECT_FALSE(utf8_code_points("\xE0\x80\xAF"));      // '/' in three bytes
  EXPECT_FALSE(utf8_code_points("\xF0\x80\x80\xAF"));  // '/' in four bytes
}

TEST(Utf8, RejectsSurrogatesAndBeyondUnicode) {
  EXPECT_FALSE(utf8_code_points("\xED\xA0\x80"));      // U+D800
  EXPECT_FALSE(utf8_code_points("\xED\xBF\xBF"));      // U+DFFF
  EXPECT_TRUE(utf8_code_points("\xED\x9F\xBF"));       // U+D7FF is fine
  EXPECT_FALSE(utf8_code_points("\xF4\x90\x80\x80"));  // U+110000
  EXPECT_TRUE(utf8_code_points("\xF4\x8F\xBF\xBF"));   // U+10FFFF is fine
}

}  // namespace
}  // namespace feed
