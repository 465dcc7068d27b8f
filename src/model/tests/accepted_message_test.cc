#include "model/accepted_message.h"

#include <gtest/gtest.h>

#include "base/testing/test_name.h"
#include "model/message_id.h"

namespace feed {
namespace {

const timestamp kNow{std::chrono::microseconds(1'700'000'000'000'000)};
constexpr std::string_view kBody = R"({"user_id":"alice","content":"hello"})";

std::string fixed_id() { return "00000000-0000-4000-8000-000000000000"; }

post_input json_post(std::string_view body = kBody) { return post_input{body, "application/json", false, {}}; }

post_decision decide(const post_input& in) { return build_accepted_message(in, post_limits{}, kNow, fixed_id); }

post_decision decide_with_keys(std::vector<std::string_view> keys) {
  auto in = json_post();
  in.idempotency_keys = std::move(keys);
  return decide(in);
}

accepted_post accepted(const post_decision& d) {
  const auto* a = std::get_if<accepted_post>(&d);
  EXPECT_TRUE(a) << std::get<post_refusal>(d).message;
  return a ? *a : accepted_post{};
}

post_refusal refused(const post_decision& d) {
  const auto* r = std::get_if<post_refusal>(&d);
  EXPECT_TRUE(r) << "accepted";
  return r ? *r : post_refusal{refusal_status::bad_request, "(accepted)"};
}

TEST(AcceptedMessage, FromAPlainPost) {
  const auto a = accepted(decide(json_post()));
  EXPECT_FALSE(a.keyed);
  EXPECT_EQ(a.msg.id, fixed_id());
  EXPECT_EQ(a.msg.user_id, "alice");
  EXPECT_EQ(a.msg.content, "hello");
  EXPECT_EQ(a.msg.created_at, kNow);
  EXPECT_EQ(a.msg.seq, seq_t{0});
}

TEST(AcceptedMessage, AKeyNamesTheMessageByUserAndKey) {
  auto in = json_post();
  in.idempotency_keys = {"key-1"};
  const auto a = accepted(decide(in));
  EXPECT_TRUE(a.keyed);
  EXPECT_EQ(a.msg.id, message_id_for_key("alice", "key-1"));
  EXPECT_EQ(accepted(decide(in)).msg.id, a.msg.id);

  auto other_user = in;
  other_user.body = R"({"user_id":"bob","content":"hello"})";
  EXPECT_NE(accepted(decide(other_user)).msg.id, a.msg.id);
}

TEST(AcceptedMessage, UsesTheLimitsGiven) {
  post_limits tight;
  tight.max_content_code_points = 3;
  auto d = build_accepted_message(json_post(), tight, kNow, fixed_id);
  EXPECT_EQ(refused(d).message, "content is 5 characters; the limit is 3");
}

TEST(AcceptedMessage, JsonContentTypesInAnyFormAreAccepted) {
  auto absent = json_post();
  absent.content_type.reset();
  EXPECT_TRUE(std::holds_alternative<accepted_post>(decide(absent)));
  for (std::string_view ct :
       {"application/json", "Application/JSON", " application/json ", "application/json; charset=utf-8",
        "application/json;charset=UTF-8", "application/json; charset=utf8", "application/json; charset=\"utf-8\"",
        "application/json; foo=bar; charset=utf-8", "application/json; foo", "application/problem+json",
        "application/vnd.api+JSON; charset=utf-8"}) {
    auto in = json_post();
    in.content_type = ct;
    EXPECT_TRUE(std::holds_alternative<accepted_post>(decide(in))) << ct;
  }
}

TEST(AcceptedMessage, OtherContentTypesAndCharsetsAre415) {
  for (std::string_view ct :
       {"", " ", "\t", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/jsonx",
        "json", "+json", "application/json-seq", "; charset=utf-8", "application/json; charset=latin1",
        "application/json; charset=\"utf-16\""}) {
    auto in = json_post();
    in.content_type = ct;
    const auto r = refused(decide(in));
    EXPECT_EQ(r.status, refusal_status::unsupported_media_type) << ct;
  }
}

// A charset named twice is refused in either order (a proxy may read the
// other one), so is an empty one, and a quoted value of another parameter
// may hold what looks like a charset.
TEST(AcceptedMessage, CharsetEdgeCases) {
  auto in = json_post();
  in.content_type = "application/json; charset=utf-8; charset=utf-16";
  EXPECT_EQ(refused(decide(in)).message, "Content-Type names charset more than once");
  in.content_type = "application/json; charset=utf-16; charset=utf-8";
  EXPECT_EQ(refused(decide(in)).status, refusal_status::unsupported_media_type);
  in.content_type = "application/json; charset=\"\"";
  EXPECT_EQ(refused(decide(in)).message, "Content-Type names charset without a value");
  in.content_type = "application/json; x=\"a;charset=latin1\"";
  EXPECT_TRUE(std::holds_alternative<accepted_post>(decide(in)));
}

TEST(AcceptedMessage, RefusalsNameTheProblem) {
  auto in = json_post();
  in.content_type = "text/plain";
  EXPECT_EQ(refused(decide(in)).message, "Content-Type must be application/json, got text/plain");
  in.content_type = "application/json; charset=latin1";
  EXPECT_EQ(refused(decide(in)).message, "the body must be UTF-8 JSON; Content-Type names charset latin1");
}

// The error response shows bytes that are not UTF-8 as U+FFFD; control
// characters become '?' here.
TEST(AcceptedMessage, QuotesHeaderValuesWithoutControlCharacters) {
  auto in = json_post();
  const std::string ct = "text/\xC3\xA9\x01\x7f\xff" + std::string(200, 'x');
  in.content_type = ct;
  const auto message = refused(decide(in)).message;
  EXPECT_EQ(message, "Content-Type must be application/json, got text/\xC3\xA9??\xff" + std::string(90, 'x'));
}

TEST(AcceptedMessage, AnyContentEncodingIs415BeforeAnythingElse) {
  auto in = json_post("not json");
  in.content_encoded = true;
  in.idempotency_keys = {"", ""};
  const auto r = refused(decide(in));
  EXPECT_EQ(r.status, refusal_status::unsupported_media_type);
  EXPECT_NE(r.message.find("Content-Encoding"), std::string::npos);
}

TEST(AcceptedMessage, ContentTypeIsCheckedBeforeTheKeyAndBody) {
  auto in = json_post("not json");
  in.content_type = "text/plain";
  in.idempotency_keys = {""};
  EXPECT_EQ(refused(decide(in)).status, refusal_status::unsupported_media_type);
}

TEST(AcceptedMessage, KeyIsCheckedBeforeTheBody) {
  auto in = json_post("not json");
  in.idempotency_keys = {"a b"};
  EXPECT_EQ(refused(decide(in)).message, "Idempotency-Key may contain only visible ASCII characters");
}

TEST(AcceptedMessage, KeyLengthIsOneTo128) {
  const std::string longest(128, 'k');
  const std::string too_long(129, 'k');
  for (std::string_view key : {std::string_view("k"), std::string_view(longest), std::string_view("!~")})
    EXPECT_TRUE(std::holds_alternative<accepted_post>(decide_with_keys({key}))) << key;
  for (std::string_view key : {std::string_view(), std::string_view(too_long)}) {
    const auto r = refused(decide_with_keys({key}));
    EXPECT_EQ(r.status, refusal_status::bad_request);
    EXPECT_EQ(r.message, "Idempotency-Key must be 1 to 128 characters");
  }
}

TEST(AcceptedMessage, KeyOfVisibleAsciiOnly) {
  const std::string long_and_bad = std::string(200, 'k') + " ";
  for (std::string_view key : {std::string_view("a b"), std::string_view("a\tb"), std::string_view("\x7f"),
                               std::string_view("caf\xC3\xA9"), std::string_view("a\0b", 3),
                               std::string_view(long_and_bad)}) {
    const auto r = refused(decide_with_keys({key}));
    EXPECT_EQ(r.status, refusal_status::bad_request);
    EXPECT_EQ(r.message, "Idempotency-Key may contain only visible ASCII characters") << key;
  }
}

TEST(AcceptedMessage, AtMostOneKey) {
  const auto r = refused(decide_with_keys({"same", "same"}));
  EXPECT_EQ(r.status, refusal_status::bad_request);
  EXPECT_EQ(r.message, "send at most one Idempotency-Key header");
}

struct bad_body {
  const char* name;
  std::string body;
  const char* error;
};

class AcceptedMessageRefusesBody : public ::testing::TestWithParam<bad_body> {};

// The body rules are parse_post_request's (see post_request_test.cc); here,
// that each kind of bad body is a 400 with its message.
TEST_P(AcceptedMessageRefusesBody, With400) {
  const auto& c = GetParam();
  const auto r = refused(decide(json_post(c.body)));
  EXPECT_EQ(r.status, refusal_status::bad_request) << c.name;
  EXPECT_NE(r.message.find(c.error), std::string::npos) << c.name << ": " << r.message;
}

INSTANTIATE_TEST_SUITE_P(
    Table, AcceptedMessageRefusesBody,
    ::testing::Values(
        bad_body{"empty", "", "request body is empty"},
        bad_body{"not json", "{user_id:1}", "invalid JSON"},
        bad_body{"not an object", "[]", "must be a JSON object"},
        bad_body{"missing user_id", R"({"content":"x"})", "missing field: user_id"},
        bad_body{"missing content", R"({"user_id":"a"})", "missing field: content"},
        bad_body{"content not a string", R"({"user_id":"a","content":1})", "content must be a string"},
        bad_body{"content too long", R"({"user_id":"a","content":")" + std::string(281, 'x') + "\"}",
                 "content is 281 characters; the limit is 280"},
        bad_body{"content too long in emoji",
                 [] {
                   std::string s = R"({"user_id":"a","content":")";
                   for (int i = 0; i < 281; ++i) s += "\xF0\x9F\x98\x80";
                   return s + "\"}";
                 }(),
                 "content is 281 characters"},
        bad_body{"invalid utf8", "{\"user_id\":\"a\",\"content\":\"\xC3\x28\"}", "not valid UTF-8"},
        bad_body{"lone surrogate", R"({"user_id":"a","content":"\ud800"})", "surrogate"},
        bad_body{"empty user_id", R"({"user_id":"","content":"x"})", "user_id must not be empty"},
        bad_body{"bad user_id", R"({"user_id":"a\u0007b","content":"x"})", "user_id must not contain control characters"},
        bad_body{"long user_id", R"({"user_id":")" + std::string(65, 'u') + R"(","content":"x"})",
                 "user_id is longer than 64 bytes"},
        bad_body{"duplicate key", R"({"user_id":"a","user_id":"b","content":"x"})", "more than once"}),
    [](const auto& info) { return test_support::test_name(info.param.name); });

}  // namespace
}  // namespace feed
