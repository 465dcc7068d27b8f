#include "base/free_space.h"

#include <gtest/gtest.h>

namespace feed {
namespace {

TEST(FreeSpace, AFileSystemWithRoomPasses) {
  const auto dir = std::filesystem::temp_directory_path();
  const auto left = free_bytes(dir);
  ASSERT_TRUE(left) << left.err().message;
  EXPECT_GT(*left, 0u);
  EXPECT_TRUE(check_free_space(dir, 0));
  EXPECT_TRUE(check_free_space(dir, *left / 2));
}

TEST(FreeSpace, LessThanAskedForIsUnavailableAndSaysHowMuchIsFree) {
  const auto dir = std::filesystem::temp_directory_path();
  const auto r = check_free_space(dir, UINTMAX_MAX);
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.err().is(errc::unavailable));
  EXPECT_NE(r.err().message.find("KiB free"), std::string::npos) << r.err().message;
  EXPECT_NE(r.err().message.find(dir.string()), std::string::npos) << r.err().message;
}

TEST(FreeSpace, AFileSystemThatCannotBeAskedIsNoProblem) {
  EXPECT_FALSE(free_bytes("/no/such/directory/here"));
  EXPECT_TRUE(check_free_space("/no/such/directory/here", UINTMAX_MAX));
}

}  // namespace
}  // namespace feed
