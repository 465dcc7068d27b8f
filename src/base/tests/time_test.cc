#include "base/time.h"

#include <cmath>
#include <random>
#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>

namespace feed {
namespace {

TEST(Rfc3339, FormatsUtcWithMicroseconds) {
  const timestamp t{std::chrono::microseconds(1'700'000'000'123'456)};
  EXPECT_EQ(format_rfc3339(t), "2023-11-14T22:13:20.123456Z");
  EXPECT_EQ(format_rfc3339(timestamp{}), "1970-01-01T00:00:00.000000Z");
}

TEST(Rfc3339, ParsesAnyOffsetAndPrecision) {
  const auto utc = parse_rfc3339("2023-11-14T22:13:20.123456Z");
  ASSERT_TRUE(utc);
  EXPECT_EQ(parse_rfc3339("2023-11-14T23:13:20.123456+01:00"), utc);
  EXPECT_EQ(parse_rfc3339("2023-11-14T17:43:20.123456-04:30"), utc);
  EXPECT_EQ(parse_rfc3339("2023-11-14T22:13:20.123456789Z"), utc);  // Go's nanoseconds, truncated
  EXPECT_EQ(parse_rfc3339("2023-11-14T22:13:20Z")->time_since_epoch().count(), 1'700'000'000'000'000);
  EXPECT_EQ(parse_rfc3339("2023-11-14T22:13:20.1Z")->time_since_epoch().count(), 1'700'000'000'100'000);
  EXPECT_EQ(parse_rfc3339(format_rfc3339(*utc)), utc);
}

TEST(Rfc3339, RejectsWhatIsNotRfc3339) {
  for (const char* bad : {"", "2023-11-14", "2023-11-14T22:13:20", "2023-13-14T22:13:20Z", "2023-02-30T00:00:00Z",
                          "2023-11-14T24:00:00Z", "2023-11-14T22:13:20.Z", "2023-11-14T22:13:20+0100",
                          "2023-11-14T22:13:20Zjunk", "yesterday"})
    EXPECT_FALSE(parse_rfc3339(bad)) << bad;
}

// Generated: instants from year 1 to 9999, written at a random offset and
// precision, read back to the microsecond (to the precision written).
TEST(Rfc3339, GeneratedInstantsAtAnyOffsetReadBack) {
  using namespace std::chrono;
  std::mt19937_64 rng(20261130);
  const auto first = sys_days{year{1} / 1 / 2}, last = sys_days{year{9999} / 12 / 30};
  std::uniform_int_distribution<std::int64_t> when(duration_cast<microseconds>(first.time_since_epoch()).count(),
                                                   duration_cast<microseconds>(last.time_since_epoch()).count());
  std::uniform_int_distribution<int> offset(-(23 * 60 + 59), 23 * 60 + 59), digits(0, 9);
  for (int i = 0; i < 20000; ++i) {
    const timestamp t{microseconds(when(rng))};
    const int off = offset(rng), precision = digits(rng);
    const auto local = t + minutes(off);
    const auto day = floor<days>(local);
    const year_month_day ymd{day};
    const hh_mm_ss hms{local - day};
    std::string text = fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", int(ymd.year()), unsigned(ymd.month()),
                                   unsigned(ymd.day()), hms.hours().count(), hms.minutes().count(),
                                   hms.seconds().count());
    const auto micros = hms.subseconds().count();
    auto expected = t;
    if (precision > 0) {
      const std::string frac = fmt::format("{:06}000", micros).substr(0, static_cast<std::size_t>(precision));
      text += "." + frac;
      if (precision < 6) expected -= microseconds(micros % static_cast<std::int64_t>(std::pow(10, 6 - precision)));
    } else {
      expected -= microseconds(micros);
    }
    text += off == 0 ? std::string("Z")
                     : fmt::format("{}{:02}:{:02}", off < 0 ? '-' : '+', std::abs(off) / 60, std::abs(off) % 60);
    const auto read = parse_rfc3339(text);
    ASSERT_TRUE(read) << text;
    EXPECT_EQ(*read, expected) << text;
  }
}

// Every digit of a valid timestamp replaced by each byte that is not a
// digit: refused, whatever the byte.
TEST(Rfc3339, ANonDigitWhereADigitBelongsIsRefused) {
  const std::string valid = "2023-11-14T22:13:20.123456+01:30";
  ASSERT_TRUE(parse_rfc3339(valid));
  for (std::size_t i = 0; i < valid.size(); ++i) {
    if (valid[i] < '0' || valid[i] > '9') continue;
    for (int b = 0; b < 256; ++b) {
      if (b >= '0' && b <= '9') continue;
      std::string bad = valid;
      bad[i] = static_cast<char>(b);
      EXPECT_FALSE(parse_rfc3339(bad)) << "position " << i << ", byte " << b;
    }
  }
}

}  // namespace
}  // namespace feed
