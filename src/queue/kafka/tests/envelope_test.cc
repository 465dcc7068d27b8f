#include "model/envelope.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace feed {
namespace {

message sample(std::int64_t seq = 0) {
  return message{"6f1c2a3e-8d4b-4e5f-9a0b-1c2d3e4f5a6b", "alice", "hello, \"world\" \u00e9",
                 *parse_rfc3339("2024-05-01T12:00:00.123456Z"), seq_t{seq}};
}

TEST(Envelope, RoundTripsCreatedWithoutSeq) {
  const message m = sample(42);
  const std::string text = encode_envelope(m, event_message_created, false);
  auto e = decode_envelope(text);
  ASSERT_TRUE(e) << e.err().message;
  EXPECT_EQ(e->event_type, "message.created");
  EXPECT_EQ(e->version, "1.0");
  EXPECT_EQ(e->id.size(), 36u);
  EXPECT_NE(e->id, m.id);  // the envelope has its own id
  EXPECT_LE(std::chrono::abs(e->at - now_utc()), std::chrono::seconds(5));
  message expected = m;
  expected.seq = seq_t{0};
  EXPECT_EQ(e->msg, expected);

  const auto v = boost::json::parse(text).as_object();
  EXPECT_FALSE(v.at("data").as_object().contains("seq"));
  EXPECT_EQ(v.at("data").at("created_at").as_string(), "2024-05-01T12:00:00.123456Z");
}

TEST(Envelope, RoundTripsProcessedWithSeq) {
  const message m = sample(42);
  auto e = decode_envelope(encode_envelope(m, event_message_processed, true));
  ASSERT_TRUE(e) << e.err().message;
  EXPECT_EQ(e->event_type, "message.processed");
  EXPECT_EQ(e->msg, m);
}

TEST(Envelope, EachEncodingHasAFreshId) {
  const message m = sample();
  auto a = decode_envelope(encode_envelope(m, event_message_created, false));
  auto b = decode_envelope(encode_envelope(m, event_message_created, false));
  ASSERT_TRUE(a && b);
  EXPECT_NE(a->id, b->id);
}

TEST(Envelope, AcceptsTheReferenceShapeWithOtherOffsetsAndUnknownFields) {
  auto e = decode_envelope(R"({
    "id": "0e3b9c9e-4d7e-4c36-a3f5-2f0d6f1b7c11", "event_type": "message.created",
    "timestamp": "2024-05-01T14:00:00.5+02:00", "version": "1.0", "trace": {"span": 7},
    "data": {"id": "m-1", "user_id": "bob", "content": "hi", "created_at": "2024-05-01T07:30:00-04:30",
             "extra": [1, 2, 3]}
  })");
  ASSERT_TRUE(e) << e.err().message;
  EXPECT_EQ(e->at, *parse_rfc3339("2024-05-01T12:00:00.5Z"));
  EXPECT_EQ(e->msg.id, "m-1");
  EXPECT_EQ(e->msg.user_id, "bob");
  EXPECT_EQ(e->msg.content, "hi");
  EXPECT_EQ(e->msg.created_at, *parse_rfc3339("2024-05-01T12:00:00Z"));
  EXPECT_EQ(e->msg.seq, seq_t{0});
}

TEST(Envelope, MissingOptionalFieldsGetDefaults) {
  const auto before = now_utc();
  auto e = decode_envelope(R"({"data": {"id": "m-2", "user_id": "carol", "content": "", "seq": 7}})");
  ASSERT_TRUE(e) << e.err().message;
  EXPECT_TRUE(e->id.empty());
  EXPECT_TRUE(e->event_type.empty());
  EXPECT_EQ(e->at, timestamp{});
  EXPECT_GE(e->msg.created_at, before);
  EXPECT_LE(e->msg.created_at, now_utc());
  EXPECT_EQ(e->msg.seq, seq_t{7});
}

TEST(Envelope, AcceptsLargeUnsignedSeq) {
  auto e = decode_envelope(R"({"data": {"id": "m", "user_id": "u", "content": "c", "seq": 9223372036854775807}})");
  ASSERT_TRUE(e) << e.err().message;
  EXPECT_EQ(e->msg.seq.value(), 9223372036854775807);
}

struct bad_case {
  const char* json;
  const char* says;  // part of the expected error message
};

class EnvelopeRejects : public testing::TestWithParam<bad_case> {};

TEST_P(EnvelopeRejects, WithAMessageNamingTheProblem) {
  auto e = decode_envelope(GetParam().json);
  ASSERT_FALSE(e) << GetParam().json;
  EXPECT_TRUE(e.err().is(errc::corrupt));
  EXPECT_NE(e.err().message.find(GetParam().says), std::string::npos) << e.err().message;
}

INSTANTIATE_TEST_SUITE_P(
    BadShapes, EnvelopeRejects,
    testing::Values(
        bad_case{"", "not valid JSON"}, bad_case{"not json", "not valid JSON"},
        bad_case{R"({"data": {"id": "m")", "not valid JSON"}, bad_case{"[1,2]", "not a JSON object"},
        bad_case{R"({"id": "x"})", "has no data"}, bad_case{R"({"data": "text"})", "data is not a JSON object"},
        bad_case{R"({"data": {"user_id": "u", "content": "c"}})", "data.id is missing"},
        bad_case{R"({"data": {"id": "", "user_id": "u", "content": "c"}})", "data.id is empty"},
        bad_case{R"({"data": {"id": "m", "user_id": 5, "content": "c"}})", "data.user_id is not a string"},
        bad_case{R"({"data": {"id": "m", "user_id": "u"}})", "data.content is missing"},
        bad_case{R"({"data": {"id": "m", "user_id": "u", "content": null}})", "data.content is not a string"},
        bad_case{R"({"data": {"id": "m", "user_id": "u", "content": "c", "created_at": "yesterday"}})",
                 "data.created_at is not an RFC 3339 time"},
        bad_case{R"({"data": {"id": "m", "user_id": "u", "content": "c", "created_at": 1714564800}})",
                 "data.created_at is not a string"},
        bad_case{R"({"data": {"id": "m", "user_id": "u", "content": "c", "seq": "7"}})", "data.seq is not"},
        bad_case{R"({"data": {"id": "m", "user_id": "u", "content": "c", "seq": 1.5}})", "data.seq is not"},
        bad_case{R"({"data": {"id": "m", "user_id": "u", "content": "c", "seq": -3}})", "data.seq is negative"},
        bad_case{R"({"data": {"id": "m", "user_id": "u", "content": "c", "seq": 18446744073709551615}})",
                 "data.seq is not"},
        bad_case{R"({"event_type": 3, "data": {"id": "m", "user_id": "u", "content": "c"}})",
                 "event_type is not a string"},
        bad_case{R"({"timestamp": "2024-05-01 noon", "data": {"id": "m", "user_id": "u", "content": "c"}})",
                 "timestamp is not an RFC 3339 time"}));

}  // namespace
}  // namespace feed
