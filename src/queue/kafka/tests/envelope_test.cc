#include "model/envelope.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

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

// The reference's API publishes a post without a user_id with "" (its
// worker stores it): such a record is a message, in both readers, and
// round-trips.
TEST(Envelope, AnEmptyUserIdIsAMessageAsTheReferencePublishesIt) {
  auto e = decode_envelope(R"({"id":"0e3b9c9e-4d7e-4c36-a3f5-2f0d6f1b7c11","event_type":"message",)"
                           R"("data":{"id":"8a7b2c1d-0000-4000-8000-000000000001","user_id":"","content":"no user"}})");
  ASSERT_TRUE(e) << e.err().message;
  EXPECT_EQ(e->msg.user_id, "");
  EXPECT_EQ(e->msg.content, "no user");
  const auto text = encode_envelope(e->msg, event_message_created, false);
  auto again = decode_envelope(text);  // the exact reader's shape
  ASSERT_TRUE(again) << again.err().message;
  EXPECT_EQ(again->msg.user_id, "");
  EXPECT_EQ(again->msg.id, e->msg.id);
  auto only = decode_envelope_message(text);
  ASSERT_TRUE(only) << only.err().message;
  EXPECT_EQ(only->user_id, "");
}

TEST(Envelope, AcceptsLargeUnsignedSeq) {
  auto e = decode_envelope(R"({"data": {"id": "m", "user_id": "u", "content": "c", "seq": 9223372036854775807}})");
  ASSERT_TRUE(e) << e.err().message;
  EXPECT_EQ(e->msg.seq.value(), 9223372036854775807);
}

// What encode_envelope wrote when it built a boost::json object and
// serialized it: the bytes the reference's consumers have been reading.
std::string serialized_by_boost_json(const message& m, std::string_view event_type, bool with_seq,
                                     std::string_view envelope_id, std::string_view at) {
  boost::json::object data;
  data.emplace("id", m.id);
  data.emplace("user_id", m.user_id);
  data.emplace("content", m.content);
  data.emplace("created_at", format_rfc3339(m.created_at));
  if (with_seq) data.emplace("seq", m.seq.value());
  boost::json::object o;
  o.emplace("id", envelope_id);
  o.emplace("event_type", event_type);
  o.emplace("timestamp", at);
  o.emplace("version", envelope_version);
  o.emplace("data", std::move(data));
  return boost::json::serialize(o);
}

// The envelope's own id and time, found without a JSON parser (some cases
// below are not valid UTF-8, which the parser refuses).
std::string id_of(std::string_view text) {
  constexpr std::string_view head = R"({"id":")";
  EXPECT_EQ(text.substr(0, head.size()), head);
  return std::string(text.substr(head.size(), 36));
}
std::string timestamp_of(std::string_view text) {
  constexpr std::string_view key = R"("timestamp":")";
  const auto at = text.find(key);
  EXPECT_NE(at, std::string_view::npos);
  return std::string(text.substr(at + key.size(), 27));
}

TEST(Envelope, EncodesTheBytesBoostJsonSerializes) {
  std::string every_byte;
  for (int c = 1; c < 256; ++c) every_byte.push_back(static_cast<char>(c));
  every_byte.push_back('\0');
  const std::vector<message> cases = {
      sample(),
      sample(9223372036854775807),
      message{"id", "u", "", timestamp{}, seq_t{1}},
      message{"\"quoted\" \\ back\\slash", "tab\there\nnew\rline\b\f", every_byte,
              *parse_rfc3339("9999-12-31T23:59:59.999999Z"), seq_t{-5}},
      message{"m", "caf\u00e9 \U0001F642", "\x7f\x80\xff not UTF-8", *parse_rfc3339("0001-01-01T00:00:00.000001Z"),
              seq_t{0}},
      // Before year 0: written as format_rfc3339 writes it.
      message{"m", "u", "c", *parse_rfc3339("0000-01-01T00:30:00+01:00"), seq_t{3}},
  };
  std::string reused = "left over from an earlier record";
  for (const auto& m : cases) {
    for (const bool with_seq : {false, true}) {
      for (const auto type : {event_message_created, event_message_processed}) {
        const std::string text = encode_envelope(m, type, with_seq);
        EXPECT_EQ(text, serialized_by_boost_json(m, type, with_seq, id_of(text), timestamp_of(text)));
        encode_envelope_into(reused, m, type, with_seq);
        EXPECT_EQ(reused, serialized_by_boost_json(m, type, with_seq, id_of(reused), timestamp_of(reused)));
      }
    }
  }
}

TEST(Envelope, IdIsAFreshUuidV7AndTimestampIsNow) {
  const auto before = now_utc();
  auto e = decode_envelope(encode_envelope(sample(), event_message_created, false));
  ASSERT_TRUE(e) << e.err().message;
  ASSERT_EQ(e->id.size(), 36u);
  EXPECT_EQ(e->id[14], '7');
  EXPECT_NE(std::string_view("89ab").find(e->id[19]), std::string_view::npos);
  EXPECT_GE(e->at, before - std::chrono::microseconds(1));
  EXPECT_LE(e->at, now_utc());
}

TEST(Envelope, MessageOnlyDecodeAgreesWithTheFullOne) {
  const std::vector<std::string> records = {
      encode_envelope(sample(42), event_message_processed, true),
      R"({"id": 1, "data": {"id": "m", "user_id": "u", "content": "c"}})",
      R"({"version": [], "data": {"id": "m", "user_id": "u", "content": "c"}})",
      R"({"timestamp": "noon", "data": {"id": "m", "user_id": "u", "content": "c"}})",
      R"({"data": {"id": "m", "user_id": "u", "content": "c", "created_at": "2024-05-01T12:00:00Z", "seq": 3}})",
      R"({"data": {"id": "m", "user_id": "u"}})",
      "[]",
  };
  for (const auto& r : records) {
    auto full = decode_envelope(r);
    auto only = decode_envelope_message(r);
    ASSERT_EQ(bool(full), bool(only)) << r;
    if (full) EXPECT_EQ(full->msg, *only) << r;
    else EXPECT_EQ(full.err().message, only.err().message) << r;
  }
}

// Decoding `record` (read by the exact reader when it has encode_envelope's
// shape) gives what the general parser gives: it reads the record with a
// space in front, which the exact reader never takes.
void expect_as_general_parser(const std::string& record) {
  SCOPED_TRACE(testing::PrintToString(record));
  const auto fast = decode_envelope(record);
  const auto general = decode_envelope(" " + record);
  ASSERT_EQ(bool(fast), bool(general)) << (fast ? general.err().message : fast.err().message);
  const auto only = decode_envelope_message(record);
  ASSERT_EQ(bool(only), bool(fast));
  if (!fast) {
    EXPECT_EQ(fast.err().message, general.err().message);
    EXPECT_EQ(only.err().message, general.err().message);
    return;
  }
  EXPECT_EQ(fast->id, general->id);
  EXPECT_EQ(fast->event_type, general->event_type);
  EXPECT_EQ(fast->version, general->version);
  EXPECT_EQ(fast->at, general->at);
  for (const message* m : {&fast->msg, &*only}) {
    EXPECT_EQ(m->id, general->msg.id);
    EXPECT_EQ(m->user_id, general->msg.user_id);
    EXPECT_EQ(m->content, general->msg.content);
    EXPECT_EQ(m->seq, general->msg.seq);
    // Without created_at each decode takes its own now.
    if (m->created_at != general->msg.created_at) {
      EXPECT_LE(std::chrono::abs(m->created_at - now_utc()), std::chrono::seconds(5));
      EXPECT_LE(std::chrono::abs(general->msg.created_at - now_utc()), std::chrono::seconds(5));
    }
  }
}

TEST(Envelope, ExactShapeIsReadAsTheGeneralParserReadsIt) {
  std::vector<std::string> records;
  std::vector<std::string> contents = {"",
                                             "plain",
                                             "caf\u00e9 \U0001F642 na\u00efve",
                                             "a \"quote\" and a \\ backslash",
                                             "tab\tnew\nline\x01",
                                             "\x7f delete",
                                             std::string(300, 'x')};
  // A quote, backslash, control or multi-byte character at every offset
  // from a block's start: strings are scanned sixteen bytes at a time, then
  // eight.
  for (const char* special : {"\"", "\\", "\x01", "\x1f", "\xC3\xA9", "\xF0\x9F\x99\x82"})
    for (std::size_t k = 0; k <= 40; ++k) contents.push_back(std::string(k, 'a') + special + std::string(40 - k, 'b'));
  for (const std::string& content : contents) {
    for (const std::int64_t seq : {0L, 7L, 999999999999999999L, 1000000000000000000L, 9223372036854775807L}) {
      const message m{"0196f0a2-5b1c-7d3e-8f4a-1b2c3d4e5f60", "user_1", content,
                      *parse_rfc3339("2024-05-01T12:00:00.123456Z"), seq_t{seq}};
      records.push_back(encode_envelope(m, event_message_processed, true));
      records.push_back(encode_envelope(m, event_message_created, false));
    }
  }
  // Raw bytes in the content: valid UTF-8 at the edges of its ranges, and
  // what strict UTF-8 refuses (overlong forms, surrogates, past U+10FFFF,
  // cut sequences).
  const std::string base = encode_envelope(sample(3), event_message_processed, true);
  const auto content_at = base.find("hello");
  ASSERT_NE(content_at, std::string::npos);
  for (const char* bytes :
       {"\xC2\x80", "\xDF\xBF", "\xE0\xA0\x80", "\xED\x9F\xBF", "\xEE\x80\x80", "\xEF\xBF\xBF", "\xF0\x90\x80\x80",
        "\xF4\x8F\xBF\xBF", "\xC0\x80", "\xC1\xBF", "\xE0\x80\x80", "\xE0\x9F\xBF", "\xED\xA0\x80", "\xED\xBF\xBF",
        "\xF0\x80\x80\x80", "\xF0\x8F\xBF\xBF", "\xF4\x90\x80\x80", "\xF5\x80\x80\x80", "\xF8\x88\x80\x80\x80",
        "\xFE", "\xFF", "\x80", "\xBF", "\xC2", "\xE2\x82", "\xF0\x9F\x99"}) {
    records.push_back(std::string(base).insert(content_at, bytes));
  }
  // Escapes encode_envelope does not write, in its shape otherwise.
  for (const char* content : {R"(a\/b)", R"(\u0041)", R"(\uD83D\uDE42)", R"(\uD83D)", R"(\x41)", R"(\)",
                              R"(ends in \\)", R"(\"\"\")"}) {
    records.push_back(std::string(base).replace(content_at, 5, content));
  }
  // Each record, and each record with one byte changed, dropped or doubled.
  std::mt19937 rng(20261130);
  const std::string interesting = "\"\\{}[],: 0159-.eE\n\x01\x7f\x80\xC3\xED\xF4\xFF" "aZ";
  std::vector<std::string> all = records;
  for (const auto& r : records) {
    for (int i = 0; i < 60; ++i) {
      std::string m = r;
      const std::size_t at = rng() % m.size();
      switch (rng() % 3) {
        case 0: m[at] = interesting[rng() % interesting.size()]; break;
        case 1: m.erase(at, 1); break;
        default: m.insert(at, 1, m[at]); break;
      }
      all.push_back(std::move(m));
    }
  }
  for (const auto& r : all) expect_as_general_parser(r);
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
