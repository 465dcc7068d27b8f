#include "bot/options.h"

#include <cstdlib>
#include <vector>

#include <gtest/gtest.h>

namespace feed::bot {
namespace {

std::optional<int> parse(std::vector<std::string> args, bot_options& o) {
  args.insert(args.begin(), "feed-bot");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  return parse_options(static_cast<int>(argv.size()), argv.data(), o);
}

class Options : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* v : {"API_HOST", "API_PORT", "BOT_API", "BOT_RATE", "BOT_INTERVAL", "BOT_USERS"}) ::unsetenv(v);
  }
};

// A flag wins over the other one's variable, as every flag wins over its
// own; both given the same way is a usage error.
TEST_F(Options, RateOrIntervalTheCommandLineWinsOverTheOthersVariable) {
  ::setenv("BOT_RATE", "5", 1);
  bot_options by_interval;
  ASSERT_FALSE(parse({"--interval", "2", "--users", "4"}, by_interval));
  EXPECT_DOUBLE_EQ(by_interval.rate, 0.5);
  bot_options by_env_rate;
  ASSERT_FALSE(parse({}, by_env_rate));
  EXPECT_DOUBLE_EQ(by_env_rate.rate, 5.0);
  ::unsetenv("BOT_RATE");

  ::setenv("BOT_INTERVAL", "5", 1);
  bot_options by_rate;
  ASSERT_FALSE(parse({"--rate=7"}, by_rate));
  EXPECT_DOUBLE_EQ(by_rate.rate, 7.0);
  ::setenv("BOT_RATE", "1", 1);
  bot_options both_env;
  testing::internal::CaptureStderr();
  EXPECT_EQ(parse({}, both_env), 2);
  EXPECT_NE(testing::internal::GetCapturedStderr().find("BOT_RATE and BOT_INTERVAL are both set"), std::string::npos);
  ::unsetenv("BOT_RATE");
  ::unsetenv("BOT_INTERVAL");
}

TEST_F(Options, DefaultsMatchTheReferenceBot) {
  bot_options o;
  ASSERT_FALSE(parse({}, o));
  EXPECT_EQ(o.host, "localhost");
  EXPECT_EQ(o.port, "8090");
  EXPECT_EQ(o.users, 3u);
  EXPECT_DOUBLE_EQ(o.rate, 0.1);  // SleepInterval: one message (of any of the 3 users) per 10 s
  EXPECT_EQ(o.duration, 0.0);
  EXPECT_EQ(o.post_path, "/api/messages");
  EXPECT_FALSE(o.seed_given);
}

TEST_F(Options, EnvironmentAndFlags) {
  ::setenv("API_HOST", "feed.internal", 1);
  ::setenv("API_PORT", "9000", 1);
  ::setenv("BOT_USERS", "10", 1);
  bot_options o;
  ASSERT_FALSE(parse({"--interval", "2"}, o));
  EXPECT_EQ(o.host, "feed.internal");
  EXPECT_EQ(o.port, "9000");
  EXPECT_DOUBLE_EQ(o.rate, 0.5);  // one message every 2 s, whatever the users
  bot_options p;
  ASSERT_FALSE(parse({"--api", "http://[::1]:8091/", "--rate", "2.5", "--users", "4", "--seed", "9"}, p));
  EXPECT_EQ(p.host, "::1");
  EXPECT_EQ(p.port, "8091");
  EXPECT_DOUBLE_EQ(p.rate, 2.5);
  EXPECT_EQ(p.users, 4u);
  EXPECT_TRUE(p.seed_given);
  ::unsetenv("API_HOST");
  ::unsetenv("API_PORT");
  ::unsetenv("BOT_USERS");
}

TEST_F(Options, BadValuesExitWithTwo) {
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"--users", "0"},
           {"--rate", "-1"},
           {"--rate", "abc"},
           {"--rate", "1", "--interval", "2"},
           {"--content-size", "281"},
           {"--verify"},
           {"--api", "https://x:1"},
           {"--api", "http://x:70000"},
           {"--api", "http://x:1,,http://y:2"},
           {"--api", "http://x:1,http://x:1"},
           {"--api", "http://x:1,ftp://y:2"},
           {"--dial-timeout", "0"},
           {"--stream-timeout", "-1"},
           {"--post-path", "api"},
           {"--log-level", "loud"},
           {"--no-such-flag"},
       }) {
    bot_options o;
    EXPECT_EQ(parse(args, o), 2) << args[0];
  }
}

// Every fractional flag refuses NaN (which passes a plain range check)
// and infinities, spelt any way strtod reads them, as a flag or from the
// environment.
TEST_F(Options, NotANumberIsRefusedByEveryFractionalFlag) {
  for (const std::string flag : {"--rate", "--interval", "--duration", "--verify-timeout", "--connect-timeout",
                                 "--request-timeout", "--dial-timeout", "--stream-timeout", "--progress"}) {
    for (const std::string value : {"nan", "NaN", "-nan", "nan(1)", "inf", "-Infinity"}) {
      bot_options o;
      EXPECT_EQ(parse({flag, value}, o), 2) << flag << " " << value;
    }
  }
  ::setenv("BOT_RATE", "nan", 1);
  bot_options o;
  EXPECT_EQ(parse({}, o), 2);
  ::unsetenv("BOT_RATE");
}

TEST_F(Options, SeveralInstances) {
  bot_options o;
  ASSERT_FALSE(parse({"--api", "http://a:8090, http://b:8091", "--stream-timeout", "0"}, o));
  ASSERT_EQ(o.apis.size(), 2u);
  EXPECT_EQ(o.apis[1].url, "http://b:8091");
  EXPECT_EQ(o.host, "a");  // the first instance, as with one
  EXPECT_EQ(o.port, "8090");
  EXPECT_EQ(o.stream_timeout, 0.0);
  ::setenv("BOT_API", "http://c:1,http://d:2", 1);
  bot_options p;
  ASSERT_FALSE(parse({}, p));
  EXPECT_EQ(p.apis.size(), 2u);
  ::unsetenv("BOT_API");
}

TEST_F(Options, HelpExitsZero) {
  bot_options o;
  testing::internal::CaptureStdout();
  EXPECT_EQ(parse({"--help"}, o), 0);
  const auto text = testing::internal::GetCapturedStdout();
  EXPECT_NE(text.find("--subscribers"), std::string::npos);
  EXPECT_NE(text.find("BOT_RATE"), std::string::npos);
  EXPECT_NE(text.find("comma-separated"), std::string::npos);
}

TEST_F(Options, FeedQueryLosesLeadingQuestionMark) {
  bot_options o;
  ASSERT_FALSE(parse({"--feed-query", "?history=0&x=1", "--subscribers", "3", "--verify"}, o));
  EXPECT_EQ(o.feed_query, "history=0&x=1");
  EXPECT_TRUE(o.verify);
}

}  // namespace
}  // namespace feed::bot
