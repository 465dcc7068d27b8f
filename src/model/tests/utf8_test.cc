#include "model/utf8.h"

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "base/testing/property.h"
#include "base/testing/test_name.h"

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

namespace feed {
namespace {

struct blank_case {
  const char* name;
  std::string text;
  bool blank;
};

class Utf8Blank : public ::testing::TestWithParam<blank_case> {};

TEST_P(Utf8Blank, MatchesWhatAReaderSees) {
  EXPECT_EQ(is_blank_to_reader(GetParam().text), GetParam().blank) << GetParam().name;
}

INSTANTIATE_TEST_SUITE_P(
    Table, Utf8Blank,
    ::testing::Values(blank_case{"empty", "", true}, blank_case{"ascii spaces", " \t\n\r\v\f", true},
                      blank_case{"NEL", "\xC2\x85", true}, blank_case{"NBSP", "\xC2\xA0", true},
                      blank_case{"soft hyphen", "\xC2\xAD", true}, blank_case{"CGJ U+034F", "\xCD\x8F", true},
                      blank_case{"ALM U+061C", "\xD8\x9C", true}, blank_case{"Hangul filler U+115F", "\xE1\x85\x9F", true},
                      blank_case{"Hangul filler U+1160", "\xE1\x85\xA0", true}, blank_case{"ogham space", "\xE1\x9A\x80", true},
                      blank_case{"Khmer U+17B4", "\xE1\x9E\xB4", true}, blank_case{"Mongolian FVS U+180B", "\xE1\xA0\x8B", true},
                      blank_case{"Mongolian U+180F", "\xE1\xA0\x8F", true}, blank_case{"en quad U+2000", "\xE2\x80\x80", true},
                      blank_case{"hair space U+200A", "\xE2\x80\x8A", true}, blank_case{"ZWSP U+200B", "\xE2\x80\x8B", true},
                      blank_case{"RLM U+200F", "\xE2\x80\x8F", true}, blank_case{"line sep U+2028", "\xE2\x80\xA8", true},
                      blank_case{"para sep U+2029", "\xE2\x80\xA9", true}, blank_case{"LRE U+202A", "\xE2\x80\xAA", true},
                      blank_case{"NNBSP U+202F", "\xE2\x80\xAF", true}, blank_case{"MMSP U+205F", "\xE2\x81\x9F", true},
                      blank_case{"word joiner U+2060", "\xE2\x81\xA0", true}, blank_case{"U+206F", "\xE2\x81\xAF", true},
                      blank_case{"ideographic space", "\xE3\x80\x80", true}, blank_case{"Hangul filler U+3164", "\xE3\x85\xA4", true},
                      blank_case{"VS1 U+FE00", "\xEF\xB8\x80", true}, blank_case{"VS16 U+FE0F", "\xEF\xB8\x8F", true},
                      blank_case{"BOM U+FEFF", "\xEF\xBB\xBF", true}, blank_case{"halfwidth filler U+FFA0", "\xEF\xBE\xA0", true},
                      blank_case{"U+FFF0", "\xEF\xBF\xB0", true}, blank_case{"U+FFF8", "\xEF\xBF\xB8", true},
                      blank_case{"shorthand U+1BCA0", "\xF0\x9B\xB2\xA0", true},
                      blank_case{"music U+1D173", "\xF0\x9D\x85\xB3", true}, blank_case{"music U+1D17A", "\xF0\x9D\x85\xBA", true},
                      blank_case{"tag U+E0000", "\xF3\xA0\x80\x80", true}, blank_case{"U+E0FFF", "\xF3\xA0\xBF\xBF", true},
                      blank_case{"mixed", " \xE2\x80\x8B\xC2\xA0\xE3\x80\x80\xEF\xBB\xBF\t", true},
                      // Neighbours of the ranges are visible.
                      blank_case{"letter", "a", false}, blank_case{"space + letter", " \xE2\x80\x8B" "b", false},
                      blank_case{"U+00A1", "\xC2\xA1", false}, blank_case{"U+2010 hyphen", "\xE2\x80\x90", false},
                      blank_case{"U+2030", "\xE2\x80\xB0", false}, blank_case{"U+205E", "\xE2\x81\x9E", false},
                      blank_case{"U+FFF9", "\xEF\xBF\xB9", false}, blank_case{"U+1D17B", "\xF0\x9D\x85\xBB", false},
                      blank_case{"U+E1000", "\xF3\xA1\x80\x80", false}, blank_case{"emoji", "\xF0\x9F\x98\x80", false},
                      blank_case{"NUL", std::string("\0", 1), false}),
    [](const auto& info) { return test_support::test_name(info.param.name); });

TEST(Utf8, FindsC0ControlsButTabAndLineFeed) {
  for (char32_t c = 0; c < 0x20; ++c) {
    const std::string s = std::string("ok") + static_cast<char>(c) + "ok";
    if (c == '\t' || c == '\n') EXPECT_FALSE(first_forbidden_control(s)) << unsigned(c);
    else EXPECT_EQ(first_forbidden_control(s), c) << unsigned(c);
  }
  EXPECT_EQ(first_forbidden_control("caf\xC3\xA9 \x7F"), U'\x7F');       // DEL
  EXPECT_EQ(first_forbidden_control("a\xC2\x85"), U'\x85');              // NEL
  EXPECT_EQ(first_forbidden_control("a\xC2\x9B" "31m"), U'\x9B');        // CSI
  EXPECT_FALSE(first_forbidden_control("caf\xC3\xA9 \xC2\xA0 \xC2\xA1"));  // U+00A0 on are not controls
}

// The well-formed byte sequences of the Unicode Standard (Table 3-7), read
// as written there: the code points of s up to its first ill-formed byte,
// and whether s is well-formed throughout.
struct decoded {
  std::vector<char32_t> points;
  bool valid = true;
};
decoded reference_decode(std::string_view s) {
  decoded d;
  const auto at = [&](std::size_t k) { return static_cast<unsigned>(static_cast<unsigned char>(s[k])); };
  const auto in = [&](std::size_t k, unsigned lo, unsigned hi) { return k < s.size() && at(k) >= lo && at(k) <= hi; };
  for (std::size_t i = 0; i < s.size();) {
    const unsigned b = at(i);
    if (b <= 0x7F) {
      d.points.push_back(b), i += 1;
    } else if (b >= 0xC2 && b <= 0xDF && in(i + 1, 0x80, 0xBF)) {
      d.points.push_back(((b & 0x1F) << 6) | (at(i + 1) & 0x3F)), i += 2;
    } else if (b >= 0xE0 && b <= 0xEF && in(i + 1, b == 0xE0 ? 0xA0 : 0x80, b == 0xED ? 0x9F : 0xBF) &&
               in(i + 2, 0x80, 0xBF)) {
      d.points.push_back(((b & 0x0F) << 12) | ((at(i + 1) & 0x3F) << 6) | (at(i + 2) & 0x3F)), i += 3;
    } else if (b >= 0xF0 && b <= 0xF4 && in(i + 1, b == 0xF0 ? 0x90 : 0x80, b == 0xF4 ? 0x8F : 0xBF) &&
               in(i + 2, 0x80, 0xBF) && in(i + 3, 0x80, 0xBF)) {
      d.points.push_back(((b & 0x07) << 18) | ((at(i + 1) & 0x3F) << 12) | ((at(i + 2) & 0x3F) << 6) |
                         (at(i + 3) & 0x3F)),
          i += 4;
    } else {
      d.valid = false;
      break;
    }
  }
  return d;
}

// Text that mixes ASCII runs of every length (so every alignment of the
// word-at-a-time scans) with controls, C1 controls, multi-byte characters at
// the edges of each length, and ill-formed pieces.
std::string random_text(std::mt19937_64& rng) {
  static const std::vector<std::string> well_formed = {
      "\t", "\n", "\r", std::string(1, '\0'), "\x01", "\x1f", "\x7f", " ", "~", "\xC2\x80", "\xC2\x85",
      "\xC2\x9F", "\xC2\xA0", "\xC3\xA9", "\xDF\xBF", "\xE0\xA0\x80", "\xED\x9F\xBF", "\xEE\x80\x80",
      "\xEF\xBF\xBF", "\xE2\x80\x8B", "\xF0\x90\x80\x80", "\xF0\x9F\x99\x82", "\xF4\x8F\xBF\xBF"};
  // Lone continuation, truncated, overlong, surrogate, beyond U+10FFFF,
  // bytes never used.
  static const std::vector<std::string> ill_formed = {
      "\x80", "\xBF", "\xC3", "\xE2\x82", "\xF0\x9F\x99", "\xC0\x80", "\xC1\xBF", "\xE0\x80\x80",
      "\xED\xA0\x80", "\xF0\x80\x80\x80", "\xF4\x90\x80\x80", "\xF5\x80\x80\x80", "\xFE", "\xFF"};
  std::string s;
  const int parts = static_cast<int>(rng() % 8);
  for (int i = 0; i < parts; ++i) {
    const auto run = rng() % 24;
    for (std::uint64_t k = 0; k < run; ++k) s += static_cast<char>(0x20 + rng() % 0x5F);
    // Ill-formed pieces are rarer, so that most texts are read to the end.
    const auto& from = rng() % 8 == 0 ? ill_formed : well_formed;
    s += from[rng() % from.size()];
  }
  return s;
}

TEST(Utf8, AgreesWithTheStandardsTableOnGeneratedText) {
  const std::uint64_t seed = test_support::property_seed();
  const int examples = test_support::property_examples(50000);
  std::mt19937_64 rng(seed);
  for (int i = 0; i < examples; ++i) {
    const std::string s = random_text(rng);
    const decoded want = reference_decode(s);
    const auto count = utf8_code_points(s);
    ASSERT_EQ(count.has_value(), want.valid) << "seed " << seed << " example " << i;
    if (count) {
      ASSERT_EQ(*count, want.points.size()) << "seed " << seed << " example " << i;
    }
    std::optional<char32_t> control;
    for (const char32_t cp : want.points)
      if ((cp < 0x20 && cp != '\t' && cp != '\n') || (cp >= 0x7F && cp <= 0x9F)) {
        control = cp;
        break;
      }
    ASSERT_EQ(first_forbidden_control(s), control) << "seed " << seed << " example " << i;
    const text_scan scan = scan_text(s);
    ASSERT_EQ(scan.code_points, count) << "seed " << seed << " example " << i;
    ASSERT_EQ(scan.first_control, control) << "seed " << seed << " example " << i;
  }
}

}  // namespace
}  // namespace feed
