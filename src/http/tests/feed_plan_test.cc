#include "http/feed_plan.h"

#include <gtest/gtest.h>

// Each case names only the parameters its request sends; the rest are absent.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace feed::http {
namespace {

using start = feed_plan::start;

const feed_limits kLimits{.history_default = 100, .max_user_id_bytes = 8};

feed_plan plan(const feed_params& in, std::int64_t head = 1000) {
  auto p = plan_feed(in, kLimits, seq_t{head});
  EXPECT_TRUE(p) << p.err().message;
  return p ? *p : feed_plan{};
}

std::string refusal(const feed_params& in, std::int64_t head = 1000) {
  auto p = plan_feed(in, kLimits, seq_t{head});
  if (p) return "no error";
  EXPECT_TRUE(p.err().is(errc::invalid_input));
  return p.err().message;
}

TEST(FeedPlan, WithoutParametersSendsTheDefaultNumberOfNewestEvents) {
  const auto p = plan({});
  EXPECT_EQ(p.from, start::newest);
  EXPECT_EQ(p.newest, 100u);
  EXPECT_EQ(p.after, seq_t{900});
  EXPECT_FALSE(p.user_id);
  EXPECT_FALSE(p.check_store_head);
}

TEST(FeedPlan, NewestStartsAtZeroWhenTheFeedIsShorter) {
  EXPECT_EQ(plan({}, 40).after, seq_t{0});
  EXPECT_EQ(plan({}, 100).after, seq_t{0});
  EXPECT_EQ(plan({}, 0).after, seq_t{0});
}

TEST(FeedPlan, HistoryCountsFromTheHead) {
  EXPECT_EQ(plan({.history = "0"}).after, seq_t{1000});
  EXPECT_EQ(plan({.history = "1"}).after, seq_t{999});
  EXPECT_EQ(plan({.history = "1000000"}).after, seq_t{0});
  EXPECT_EQ(plan({.history = "1000000"}).newest, 1'000'000u);
}

TEST(FeedPlan, HistoryAllStartsAtTheBeginning) {
  const auto p = plan({.history = "all"});
  EXPECT_EQ(p.from, start::everything);
  EXPECT_EQ(p.after, seq_t{0});
}

TEST(FeedPlan, HistoryOutOfBoundsOrNotAnIntegerIsRefused) {
  const std::string want = "history must be 'all' or an integer from 0 to 1000000, got '{}'";
  for (const std::string bad : {"-1", "1000001", "lots", "", "1.5", " 1", "1 ", "+1", "0x10", "ALL", "99999999999999999999"}) {
    auto expected = want;
    expected.replace(expected.find("{}"), 2, bad);
    EXPECT_EQ(refusal({.history = bad}), expected) << bad;
  }
}

TEST(FeedPlan, LastEventIdResumes) {
  const auto p = plan({.last_event_id = "250"});
  EXPECT_EQ(p.from, start::resume);
  EXPECT_EQ(p.after, seq_t{250});
  EXPECT_FALSE(p.check_store_head);
  EXPECT_EQ(plan({.last_event_id = "0"}).after, seq_t{0});
}

TEST(FeedPlan, SinceResumes) {
  const auto p = plan({.since = "7"});
  EXPECT_EQ(p.from, start::resume);
  EXPECT_EQ(p.after, seq_t{7});
}

TEST(FeedPlan, LastEventIdWinsOverSinceWhichIsStillChecked) {
  EXPECT_EQ(plan({.last_event_id = "5", .since = "9"}).after, seq_t{5});
  // As ?history= is: a URL with a bad ?since= was refused at its first
  // connect, and its reconnects are answered the same.
  EXPECT_EQ(refusal({.last_event_id = "5", .since = "junk"}),
            "since must be an integer from 0 to 9223372036854775807, got 'junk'");
  EXPECT_NE(refusal({.last_event_id = "5", .since = "-5"}), "no error");
}

TEST(FeedPlan, AnEmptyLastEventIdCountsAsAbsent) {
  EXPECT_EQ(plan({.last_event_id = "", .since = "9"}).after, seq_t{9});
  EXPECT_EQ(plan({.last_event_id = ""}).from, start::newest);
}

TEST(FeedPlan, ResumeWinsOverHistory) {
  const auto p = plan({.since = "3", .history = "all"});
  EXPECT_EQ(p.from, start::resume);
  EXPECT_EQ(p.after, seq_t{3});
  EXPECT_EQ(plan({.last_event_id = "3", .history = "10"}).after, seq_t{3});
}

TEST(FeedPlan, HistoryIsCheckedEvenWhenAResumeMakesItMoot) {
  EXPECT_NE(refusal({.last_event_id = "3", .history = "x"}), "no error");
}

TEST(FeedPlan, AnInvalidLastEventIdIsRefused) {
  EXPECT_EQ(refusal({.last_event_id = "abc"}),
            "Last-Event-ID must be an integer from 0 to 9223372036854775807, got 'abc'");
  EXPECT_EQ(refusal({.last_event_id = "-1"}),
            "Last-Event-ID must be an integer from 0 to 9223372036854775807, got '-1'");
  EXPECT_EQ(refusal({.last_event_id = "9223372036854775808"}),
            "Last-Event-ID must be an integer from 0 to 9223372036854775807, got '9223372036854775808'");
  // A valid ?since= does not rescue it: the header is what the browser resumes with.
  EXPECT_NE(refusal({.last_event_id = "x", .since = "1"}), "no error");
}

TEST(FeedPlan, AnInvalidSinceIsRefused) {
  EXPECT_EQ(refusal({.since = "x"}), "since must be an integer from 0 to 9223372036854775807, got 'x'");
  EXPECT_EQ(refusal({.since = ""}), "since must be an integer from 0 to 9223372036854775807, got ''");
}

TEST(FeedPlan, AResumePastThisInstancesHeadAsksForTheStoresHead) {
  EXPECT_TRUE(plan({.last_event_id = "1001"}).check_store_head);
  EXPECT_TRUE(plan({.since = "5000"}).check_store_head);
  EXPECT_FALSE(plan({.since = "1000"}).check_store_head);
  EXPECT_FALSE(plan({.history = "all"}, 0).check_store_head);
}

TEST(FeedPlan, UserFilterFollowsOneAuthor) {
  auto p = plan({.user_id = "alice"});
  EXPECT_EQ(p.from, start::newest_by_author);
  EXPECT_EQ(p.user_id, "alice");
  EXPECT_EQ(p.newest, 100u);
  EXPECT_EQ(p.after, seq_t{1000});  // the search for alice's newest starts at the head
  EXPECT_EQ(plan({.history = "3", .user_id = "alice"}).newest, 3u);
  p = plan({.history = "all", .user_id = "a.b-c_9"});
  EXPECT_EQ(p.from, start::everything);
  EXPECT_EQ(p.user_id, "a.b-c_9");
  p = plan({.since = "4", .user_id = "bob"});
  EXPECT_EQ(p.from, start::resume);
  EXPECT_EQ(p.user_id, "bob");
}

TEST(FeedPlan, AnInvalidUserFilterIsRefused) {
  EXPECT_EQ(refusal({.user_id = ""}), "user_id must not be empty");
  EXPECT_EQ(refusal({.user_id = "123456789"}), "user_id is longer than 8 bytes");
  EXPECT_EQ(refusal({.user_id = "a\nb"}), "user_id must not contain control characters");
  EXPECT_EQ(refusal({.user_id = "a\x1b[2J"}), "user_id must not contain control characters");
  EXPECT_NE(refusal({.since = "1", .user_id = "a\x7f"}), "no error");
}

TEST(FeedPlan, TheFirstProblemInRequestOrderIsTheOneReported) {
  EXPECT_EQ(refusal({.since = "x", .history = "y", .user_id = ""}).rfind("since", 0), 0u);
  EXPECT_EQ(refusal({.history = "y", .user_id = ""}).rfind("history", 0), 0u);
}

}  // namespace
}  // namespace feed::http
