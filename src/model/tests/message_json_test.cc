// The direct JSON writer against the boost::json object it replaced: same
// bytes for every message, including every escape and every time edge.
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <boost/json.hpp>
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "base/testing/utf8_encode.h"
#include "model/message.h"
#include "model/message_json.h"
#include "model/sse_frame.h"

namespace feed {
namespace {

std::string reference_json(const message& m, bool with_seq) {
  return boost::json::serialize(to_json_object(m, with_seq));
}

std::string reference_frame(const message& m) {
  return fmt::format("id: {}\ndata: {}\n\n", m.seq.value(), reference_json(m, false));
}

using test_support::append_utf8;

// Valid UTF-8 weighted towards what the encoder treats specially: every
// control character, quotes, backslashes, DEL, slashes, U+2028/U+2029 and
// multi-byte characters of every length.
std::string random_text(std::mt19937_64& rng, std::size_t max_len) {
  std::uniform_int_distribution<std::size_t> len(0, max_len);
  std::uniform_int_distribution<int> kind(0, 9);
  const std::size_t n = len(rng);
  std::string s;
  for (std::size_t i = 0; i < n; ++i) {
    switch (kind(rng)) {
      case 0: append_utf8(s, std::uniform_int_distribution<char32_t>(0, 0x1F)(rng)); break;
      case 1: s += "\"\\/\x7f"[std::uniform_int_distribution<int>(0, 3)(rng)]; break;
      case 2: append_utf8(s, std::uniform_int_distribution<int>(0, 1)(rng) ? U'\u2028' : U'\u2029'); break;
      case 3: append_utf8(s, std::uniform_int_distribution<char32_t>(0x80, 0x7FF)(rng)); break;
      case 4: {
        char32_t c = std::uniform_int_distribution<char32_t>(0x800, 0xFFFD)(rng);
        if (c >= 0xD800 && c <= 0xDFFF) c = 0xFFFD;
        append_utf8(s, c);
        break;
      }
      case 5: append_utf8(s, std::uniform_int_distribution<char32_t>(0x10000, 0x10FFFF)(rng)); break;
      default: append_utf8(s, std::uniform_int_distribution<char32_t>(0x20, 0x7E)(rng)); break;
    }
  }
  return s;
}

std::int64_t random_seq(std::mt19937_64& rng) {
  constexpr auto lo = std::numeric_limits<std::int64_t>::min(), hi = std::numeric_limits<std::int64_t>::max();
  switch (std::uniform_int_distribution<int>(0, 5)(rng)) {
    case 0: return std::array<std::int64_t, 9>{0, 1, 9, 10, 99, 100, -1, lo, hi}[rng() % 9];
    case 1: return std::uniform_int_distribution<std::int64_t>(lo, hi)(rng);
    default: return std::uniform_int_distribution<std::int64_t>(1, 10'000'000'000)(rng);
  }
}

constexpr std::int64_t kMicrosPerDay = 86'400'000'000;

timestamp at(std::chrono::sys_days day, std::int64_t micros_into_day = 0) {
  return timestamp{std::chrono::microseconds{day.time_since_epoch().count() * kMicrosPerDay + micros_into_day}};
}

timestamp random_time(std::mt19937_64& rng) {
  using namespace std::chrono;
  static const std::vector<timestamp> edges = [] {
    std::vector<timestamp> v;
    const sys_days days[] = {year{1970} / 1 / 1,  year{1969} / 12 / 31, year{2024} / 2 / 29, year{2100} / 2 / 28,
                             year{2000} / 2 / 29, year{1900} / 3 / 1,   year{0} / 1 / 1,     year{9999} / 12 / 31,
                             year{10000} / 1 / 1, year{-1} / 12 / 31,   year{-9999} / 1 / 1, year{12345} / 6 / 7};
    for (auto d : days)
      for (std::int64_t us : {std::int64_t{0}, std::int64_t{1}, std::int64_t{999'999}, std::int64_t{1'000'000},
                              std::int64_t{59'999'999}, std::int64_t{3'599'999'999}, kMicrosPerDay - 1})
        v.push_back(at(d, us));
    return v;
  }();
  switch (std::uniform_int_distribution<int>(0, 4)(rng)) {
    case 0: return edges[rng() % edges.size()];
    case 1:  // anywhere in years 0..9999 and a little beyond, both directions
      return timestamp{microseconds{std::uniform_int_distribution<std::int64_t>(-63'000'000'000'000'000,
                                                                                254'000'000'000'000'000)(rng)}};
    default: {  // around now, whole and fractional seconds
      const std::int64_t us = std::uniform_int_distribution<std::int64_t>(1'600'000'000'000'000,
                                                                          1'900'000'000'000'000)(rng);
      const std::int64_t unit = rng() % 2 ? 1'000'000 : 1;
      return timestamp{microseconds{us / unit * unit}};
    }
  }
}

message random_message(std::mt19937_64& rng) {
  return message{random_text(rng, 40), random_text(rng, 24), random_text(rng, 300), random_time(rng),
                 seq_t{random_seq(rng)}};
}

void expect_same(const message& m) {
  for (bool with_seq : {false, true}) {
    const auto want = reference_json(m, with_seq);
    ASSERT_EQ(to_json(m, with_seq), want) << "content " << m.content;
    ASSERT_EQ(json_size(m, with_seq), want.size());
    std::string appended = "prefix";
    append_json(appended, m, with_seq);
    ASSERT_EQ(appended, "prefix" + want);
  }
  ASSERT_EQ(sse_event_frame(m), reference_frame(m));
  std::string page = "id: 1\n\n";
  append_sse_event_frame(page, m);
  ASSERT_EQ(page, "id: 1\n\n" + reference_frame(m));
}

TEST(MessageJsonWriter, MatchesBoostJsonForRandomMessages) {
  std::mt19937_64 rng(20261130);
  for (int i = 0; i < 20000; ++i) {
    const auto m = random_message(rng);
    expect_same(m);
    if (HasFatalFailure()) return;
  }
}

TEST(MessageJsonWriter, MatchesBoostJsonForEveryByteAlone) {
  // Every single byte, valid UTF-8 or not: the writer escapes by byte, as
  // boost::json's serializer does, and never looks at sequences.
  for (int c = 0; c < 256; ++c) {
    message m{"id", "u", std::string(1, static_cast<char>(c)), timestamp{}, seq_t{c}};
    expect_same(m);
    m.content = fmt::format("a{}b{}", static_cast<char>(c), static_cast<char>(c));
    expect_same(m);
  }
}

TEST(MessageJsonWriter, FindsAnEscapedByteAtEveryPositionAmongAnyOthers) {
  // Bytes next to the escaped ones in value or differing from them only in
  // the top bit, which a word- or block-at-a-time scan could mistake for them.
  const std::string fillers[] = {"a", " ", "!", "#", "[", "]", "\x7f", "\x80", "\xa0", "\xa2", "\xdc", "\xff",
                                 "\xc3\xa9", "\xe2\x80\xa8"};
  // The edges of the control range and each escape kind (all 256 bytes
  // are checked alone above).
  const char specials[] = {'\0', '\x01', '\b', '\x0b', '\x1f', '"', '\\'};
  message m{"id", "u", "", timestamp{}, seq_t{1}};
  for (const auto& filler : fillers) {
    // Up to two blocks of sixteen and a word of eight past them.
    for (std::size_t len = 0; len <= 41; ++len) {
      std::string plain;
      while (plain.size() < len) plain += filler;
      m.content = plain;
      expect_same(m);
      if (HasFatalFailure()) return;
      for (std::size_t at = 0; at < plain.size(); ++at)
        for (char special : specials) {
          m.content = plain;
          m.content[at] = special;
          expect_same(m);
          if (HasFatalFailure()) return;
        }
    }
  }
}

TEST(MessageJsonWriter, MatchesBoostJsonAtTimeEdges) {
  std::mt19937_64 rng(7);
  message m{"0b7c1f7e-8a51-4c4c-9a4b-2b1b6f0f6a11", "alice", "hi", timestamp{}, seq_t{42}};
  for (int i = 0; i < 5000; ++i) {
    m.created_at = random_time(rng);
    expect_same(m);
    if (HasFatalFailure()) return;
  }
}

TEST(MessageJsonWriter, EmptyFields) {
  expect_same(message{});
  expect_same(message{"", "", "", timestamp{}, seq_t{0}});
}

}  // namespace
}  // namespace feed
