#include "base/time.h"

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

}  // namespace
}  // namespace feed
