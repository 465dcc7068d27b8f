#include "base/file_lock.h"

#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <utility>

#include <fstream>
#include <iterator>

#include <gtest/gtest.h>

namespace feed {
namespace {

static std::string read_all(const std::filesystem::path& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Each test's lock files live in a directory of its own, removed after it.
class FileLock : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("feed-file-lock-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  std::filesystem::path temp_lock(const std::string& name) const { return dir_ / name; }
  // A file `name` holding `text`, and a symbolic link `link_name` to it.
  std::pair<std::filesystem::path, std::filesystem::path> linked(const std::string& name, const std::string& text,
                                                                 const std::string& link_name) const {
    const auto file = temp_lock(name);
    { std::ofstream(file) << text; }
    const auto link = temp_lock(link_name);
    std::filesystem::create_symlink(file, link);
    return {file, link};
  }

 private:
  std::filesystem::path dir_;
};

TEST_F(FileLock, ASecondTakerIsRefusedWithTheHoldersPidUntilTheFirstLetsGo) {
  const auto path = temp_lock("a.lock");
  auto first = file_lock::take(path);
  ASSERT_TRUE(first) << first.err().message;
  EXPECT_TRUE(first->held());
  auto second = file_lock::take(path);
  ASSERT_FALSE(second);
  EXPECT_TRUE(second.err().is(errc::invalid_input));
  EXPECT_NE(second.err().message.find("locked by another process (pid " + std::to_string(::getpid()) + ")"),
            std::string::npos)
      << second.err().message;
  *first = file_lock();  // let go
  auto third = file_lock::take(path);
  EXPECT_TRUE(third) << third.err().message;
}

// The kernel drops the lock of a process that dies, however it dies: a
// lock file left behind never blocks the next start.
TEST_F(FileLock, ALockHeldByAKilledProcessIsFree) {
  const auto path = temp_lock("b.lock");
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto held = file_lock::take(path);
    const char c = held ? 'y' : 'n';
    (void)!::write(ready[1], &c, 1);
    ::pause();
    ::_exit(0);
  }
  char c = 0;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  ASSERT_EQ(c, 'y');
  auto refused = file_lock::take(path);
  EXPECT_FALSE(refused);
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  auto taken = file_lock::take(path);
  EXPECT_TRUE(taken) << taken.err().message;
  ::close(ready[0]);
  ::close(ready[1]);
}

TEST_F(FileLock, AnUnopenableFileIsUnavailable) {
  auto r = file_lock::take("/nonexistent-dir-feed/x.lock");
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.err().is(errc::unavailable)) << r.err().message;
}

// The lock file is truncated and written: a symbolic link in its place is
// refused, and what it names is left as it was.
TEST_F(FileLock, ASymbolicLinkInThePlaceOfTheFileIsRefusedAndItsTargetUntouched) {
  const auto [target, link] = linked("target", "keep me\n", "link.lock");
  auto r = file_lock::take(link);
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.err().is(errc::unavailable)) << r.err().message;
  EXPECT_EQ(read_all(target), "keep me\n");
}

// A file locked in place (a database) keeps its contents, through a link
// too, and a second taker is refused without a pid it cannot know.
TEST_F(FileLock, InPlaceLocksWriteNothingFollowLinksAndRefuseASecondTaker) {
  const auto [data, link] = linked("data", "12345\n", "data-link");
  auto first = file_lock::take_in_place(link);
  ASSERT_TRUE(first) << first.err().message;
  EXPECT_EQ(read_all(data), "12345\n");
  auto second = file_lock::take_in_place(data);
  ASSERT_FALSE(second);
  EXPECT_TRUE(second.err().is(errc::invalid_input)) << second.err().message;
  EXPECT_NE(second.err().message.find("is locked by another process"), std::string::npos);
  EXPECT_EQ(second.err().message.find("pid"), std::string::npos) << second.err().message;
  *first = file_lock();
  EXPECT_TRUE(file_lock::take_in_place(data));
  // A missing file is created, empty.
  const auto fresh = temp_lock("fresh");
  EXPECT_TRUE(file_lock::take_in_place(fresh));
  EXPECT_EQ(read_all(fresh), "");
}

}  // namespace
}  // namespace feed
