#include "model/post_request.h"

#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "base/testing/test_name.h"

namespace feed {
namespace {

std::string body(std::string_view user, std::string_view content) {
  return std::string(R"({"user_id":")") + std::string(user) + R"(","content":")" + std::string(content) + "\"}";
}

std::string repeat(std::string_view s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

TEST(PostRequest, AcceptsAValidMessage) {
  auto r = parse_post_request(body("john_doe", "This is my first tweet!"));
  ASSERT_TRUE(r) << r.err().message;
  EXPECT_EQ(r->user_id, "john_doe");
  EXPECT_EQ(r->content, "This is my first tweet!");
}

TEST(PostRequest, DecodesEscapesAndIgnoresUnknownFields) {
  auto r = parse_post_request(R"({"user_id":"a.b-c_1","content":"line\nbreak \u00e9 \ud83d\ude00","extra":1})");
  ASSERT_TRUE(r) << r.err().message;
  EXPECT_EQ(r->content, "line\nbreak \xC3\xA9 \xF0\x9F\x98\x80");
}

TEST(PostRequest, ContentLimitCountsCodePoints) {
  EXPECT_TRUE(parse_post_request(body("u", repeat("a", 280))));
  EXPECT_FALSE(parse_post_request(body("u", repeat("a", 281))));
  // 280 emoji are 1120 bytes and still within the limit.
  EXPECT_TRUE(parse_post_request(body("u", repeat("\xF0\x9F\x98\x80", 280))));
  EXPECT_FALSE(parse_post_request(body("u", repeat("\xF0\x9F\x98\x80", 281))));
  // A combining mark is a code point of its own: 140 x (e + U+0301) = 280.
  EXPECT_TRUE(parse_post_request(body("u", repeat("e\xCC\x81", 140))));
  EXPECT_FALSE(parse_post_request(body("u", repeat("e\xCC\x81", 140) + "x")));
  auto r = parse_post_request(body("u", repeat("a", 281)));
  EXPECT_EQ(r.err().message, "content is 281 characters; the limit is 280");
}

struct bad_case {
  const char* name;
  std::string body;
  const char* error_contains;
};

class PostRequestRejects : public ::testing::TestWithParam<bad_case> {};

TEST_P(PostRequestRejects, WithAMessageNamingTheProblem) {
  const auto& c = GetParam();
  auto r = parse_post_request(c.body);
  ASSERT_FALSE(r) << c.name;
  EXPECT_TRUE(r.err().is(errc::invalid_input));
  EXPECT_NE(r.err().message.find(c.error_contains), std::string::npos) << c.name << ": " << r.err().message;
}

INSTANTIATE_TEST_SUITE_P(
    Table, PostRequestRejects,
    ::testing::Values(
        bad_case{"empty body", "", "empty"},
        bad_case{"not json", "hello", "invalid JSON"},
        bad_case{"truncated json", R"({"user_id":"a","content":"b")", "invalid JSON"},
        bad_case{"array", R"(["a","b"])", "JSON object"},
        bad_case{"string", R"("hi")", "JSON object"},
        bad_case{"missing user_id", R"({"content":"b"})", "missing field: user_id"},
        bad_case{"missing content", R"({"user_id":"a"})", "missing field: content"},
        bad_case{"null content", R"({"user_id":"a","content":null})", "missing field: content"},
        bad_case{"number user_id", R"({"user_id":7,"content":"b"})", "user_id must be a string"},
        bad_case{"object content", R"({"user_id":"a","content":{}})", "content must be a string"},
        bad_case{"empty user_id", body("", "b"), "user_id must not be empty"},
        bad_case{"empty content", body("a", ""), "content must not be empty"},
        bad_case{"blank content", body("a", "  \\n "), "only whitespace"},
        bad_case{"long user_id", body(repeat("u", 65), "b"), "longer than 64 bytes"},
        bad_case{"user_id with tab", body("a\\tb", "b"), "user_id must not contain control characters"},
        bad_case{"user_id with line feed", body("a\\n", "b"), "user_id must not contain control characters"},
        bad_case{"user_id with escape", body("\\u001b[31m", "b"), "user_id must not contain control characters"},
        bad_case{"user_id with C1 control", body("a\xC2\x9B", "b"), "user_id must not contain control characters"},
        bad_case{"user_id with DEL", body("a\x7F", "b"), "user_id must not contain control characters"},
        bad_case{"raw invalid utf8", body("a", "\xC3\x28"), "not valid UTF-8"},
        bad_case{"overlong utf8", body("a", "\xC0\xAF"), "not valid UTF-8"},
        bad_case{"encoded surrogate", body("a", "\xED\xA0\x80"), "not valid UTF-8"},
        bad_case{"lone high surrogate escape", body("a", "x\\ud800y"), "UTF-8"},
        bad_case{"lone low surrogate escape", body("a", "\\udc00"), "UTF-8"},
        bad_case{"too deep", R"({"user_id":"a","content":"b","x":[[[[[[[[[[1]]]]]]]]]]})", "invalid JSON"},
        bad_case{"duplicate user_id", R"({"user_id":"a","user_id":"b","content":"c"})", "\"user_id\" more than once"},
        bad_case{"duplicate content", R"({"user_id":"a","content":"b","content":"c"})", "\"content\" more than once"},
        bad_case{"duplicate by escape", R"({"user_id":"a","user\u005fid":"b","content":"c"})", "more than once"},
        bad_case{"duplicate unknown key", R"({"user_id":"a","content":"c","x":1,"x":2})", "\"x\" more than once"},
        bad_case{"duplicate nested key", R"({"user_id":"a","content":"c","x":{"k":1,"k":2}})", "more than once"},
        bad_case{"NUL in content", body("a", "x\\u0000y"), "control characters (found U+0000)"},
        bad_case{"CR escape in content", body("a", "x\\ry"), "U+000D"},
        bad_case{"escape char", body("a", "x\\u001by"), "U+001B"},
        bad_case{"vertical tab", body("a", "x\\u000by"), "U+000B"},
        bad_case{"DEL", body("a", "x\\u007fy"), "U+007F"},
        bad_case{"C1 CSI", body("a", "x\\u009b31my"), "U+009B"},
        bad_case{"C1 NEL raw", body("a", "x\xC2\x85y"), "U+0085"},
        bad_case{"ZWSP only", body("a", "\\u200b\\u200b"), "only whitespace or invisible"},
        bad_case{"NBSP and ideographic space", body("a", "\\u00a0\\u3000 "), "only whitespace or invisible"},
        bad_case{"BOM in content", body("a", "\\ufeff"), "only whitespace or invisible"},
        bad_case{"line separator", body("a", "\\u2028\\u2029"), "only whitespace or invisible"},
        bad_case{"tags and fillers", body("a", "\\udb40\\udc20\\u3164\\uffa0"), "only whitespace or invisible"},
        bad_case{"two BOMs before the body", "\xEF\xBB\xBF\xEF\xBB\xBF" + body("a", "b"), "invalid JSON"}),
    [](const auto& info) { return test_support::test_name(info.param.name); });

// The body's UTF-8 is checked before the parser, whose own check is off;
// wherever an ill-formed sequence sits, in a key, a value, a field that is
// not read, between tokens or after the object, the answer names it.
TEST(PostRequest, IllFormedUtf8AnywhereIsNamedAsSuch) {
  const std::string valid = R"({"user_id":"u1","content":"caf\u00e9 ok","extra":["x",{"k":"v"}]} )";
  ASSERT_TRUE(parse_post_request(valid));
  const std::string_view ill_formed[] = {"\x80",         "\xBF",         "\xC3",         "\xE2\x82",
                                         "\xF0\x9F\x99", "\xC0\xAF",     "\xC1\xBF",     "\xE0\x80\xAF",
                                         "\xED\xA0\x80", "\xF0\x80\x80\xAF", "\xF4\x90\x80\x80", "\xF5\x80\x80\x80",
                                         "\xFE",         "\xFF"};
  for (const auto bad : ill_formed)
    for (std::size_t at = 0; at <= valid.size(); ++at) {
      const std::string b = valid.substr(0, at) + std::string(bad) + valid.substr(at);
      const auto r = parse_post_request(b);
      ASSERT_FALSE(r) << at;
      EXPECT_EQ(r.err().message, "request body is not valid UTF-8") << "at " << at;
    }
}

TEST(PostRequest, KeepsTabsAndLineFeedsInContent) {
  auto r = parse_post_request(body("a", "col1\\tcol2\\nline 2"));
  ASSERT_TRUE(r) << r.err().message;
  EXPECT_EQ(r->content, "col1\tcol2\nline 2");
  EXPECT_TRUE(parse_post_request(body("a", "\\u200bvisible\\u00a0")));
}

TEST(PostRequest, SkipsAByteOrderMark) {
  auto r = parse_post_request("\xEF\xBB\xBF" + body("a", "b"));
  ASSERT_TRUE(r) << r.err().message;
  EXPECT_EQ(r->content, "b");
}

TEST(PostRequest, NamesADuplicateKeyOnlyWhenShort) {
  const std::string key(65, 'k');
  auto r = parse_post_request(fmt::format(R"({{"user_id":"a","content":"b","{0}":1,"{0}":2}})", key));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().message, "the JSON object has a key more than once");
  r = parse_post_request(fmt::format(R"({{"user_id":"a","content":"b","{0}":1,"{0}":2}})", key.substr(1)));
  ASSERT_FALSE(r);
  EXPECT_NE(r.err().message.find(key.substr(1)), std::string::npos) << r.err().message;
}

TEST(PostRequest, AnEmptyKeyGivenTwiceIsADuplicateToo) {
  // The empty key is a key like any other; given twice it must not hide a
  // repeated field of the same object either.
  for (const char* body : {R"({"":0,"":1,"user_id":"a","content":"c"})",
                           R"({"":0,"":1,"user_id":"a","user_id":"b","content":"c"})",
                           R"({"user_id":"a","content":"c","x":{"":0,"":1}})"}) {
    auto r = parse_post_request(body);
    ASSERT_FALSE(r) << body;
    EXPECT_EQ(r.err().message, R"(the JSON object has the key "" more than once)") << body;
  }
}

// The reference takes any text as a user id: its own README's load test
// posts as "user$i", and e-mail addresses and names are common.
TEST(PostRequest, UserIdsAreAnyTextWithoutControlCharacters) {
  for (const char* id : {"user$i", "alice@example.com", "John Doe", "jos\xC3\xA9", "a/b", "<b>x</b>", " ",
                         "\xF0\x9F\x98\x80", "quote\"d"}) {
    EXPECT_EQ(check_user_id(id, 64), "") << id;
  }
  auto r = parse_post_request(R"({"user_id":"user$i","content":"Message $i"})");
  ASSERT_TRUE(r) << r.err().message;
  EXPECT_EQ(r->user_id, "user$i");
  EXPECT_EQ(check_user_id("a\xC3", 64), "user_id is not valid UTF-8");
}

TEST(PostRequest, UserIdLimitIsBytes) {
  EXPECT_TRUE(parse_post_request(body(repeat("u", 64), "b")));
  EXPECT_EQ(check_user_id(repeat("u", 64), 64), "");
  EXPECT_NE(check_user_id(repeat("u", 65), 64), "");

  // A post's author must be readable; a filter takes what a record holds.
  for (const char* blank : {" ", "   ", "\xE2\x80\x8B", "\xE2\x80\xA8", "\xEF\xBB\xBF", " \xE2\x80\x8B "}) {
    EXPECT_EQ(check_user_id(blank, 64), "") << blank;
    EXPECT_EQ(check_author(blank, 64), "user_id must not be only whitespace or invisible characters") << blank;
    auto r = parse_post_request(fmt::format(R"({{"user_id":"{}","content":"hi"}})", blank));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.err().message, "user_id must not be only whitespace or invisible characters");
  }
  EXPECT_EQ(check_author("b\xE2\x80\x8Bob", 64), "") << "visible text beside an invisible character";
  EXPECT_EQ(check_author("José Díaz", 64), "");
}

}  // namespace
}  // namespace feed
