#include <cctype>
#include <set>
#include <string>
#include <vector>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "model/message.h"
#include "model/message_id.h"
#include "model/sse_frame.h"

namespace feed {
namespace {

message sample(std::string content) {
  return message{"0b7c1f7e-8a51-4c4c-9a4b-2b1b6f0f6a11", "alice", std::move(content),
                 *parse_rfc3339("2024-05-06T07:08:09.123456Z"), seq_t{42}};
}

TEST(MessageJson, HasTheReferenceFieldsAndShape) {
  auto v = boost::json::parse(to_json(sample("hi")));
  const auto& o = v.as_object();
  EXPECT_EQ(o.size(), 4u);
  EXPECT_EQ(o.at("id").as_string(), "0b7c1f7e-8a51-4c4c-9a4b-2b1b6f0f6a11");
  EXPECT_EQ(o.at("user_id").as_string(), "alice");
  EXPECT_EQ(o.at("content").as_string(), "hi");
  EXPECT_EQ(o.at("created_at").as_string(), "2024-05-06T07:08:09.123456Z");
  EXPECT_EQ(boost::json::parse(to_json(sample("hi"), true)).as_object().at("seq").as_int64(), 42);
}

TEST(MessageJson, RoundTrips) {
  auto m = sample("quote \" backslash \\ tab \t emoji \xF0\x9F\x98\x80");
  auto back = message_from_json(boost::json::parse(to_json(m, true)));
  ASSERT_TRUE(back) << back.err().message;
  EXPECT_EQ(*back, m);
}

TEST(MessageJson, RejectsWrongShapes) {
  EXPECT_FALSE(message_from_json(boost::json::parse("[]")));
  EXPECT_FALSE(message_from_json(boost::json::parse(R"({"id":"x","user_id":"u","content":"c"})")));
  EXPECT_FALSE(message_from_json(
      boost::json::parse(R"({"id":"x","user_id":"u","content":"c","created_at":"yesterday"})")));
  EXPECT_FALSE(message_from_json(
      boost::json::parse(R"({"id":"x","user_id":"u","content":"c","created_at":"2024-05-06T07:08:09Z","seq":"1"})")));
}

TEST(Unstorable, TakesUuidsInEitherCaseAndAnyText) {
  EXPECT_EQ(unstorable_reason(sample("hi")), "");
  auto upper = sample("tab\tline\nemoji \xF0\x9F\x98\x80");
  upper.id = "0B7C1F7E-8A51-4C4C-9A4B-2B1B6F0F6A11";
  upper.user_id = "alice@example.com";
  EXPECT_EQ(unstorable_reason(upper), "");
}

TEST(Unstorable, NamesWhatNoStoreTakes) {
  for (const char* id : {"not-a-uuid", "", "0b7c1f7e8a514c4c9a4b2b1b6f0f6a11", "{0b7c1f7e-8a51-4c4c-9a4b-2b1b6f0f6a11}",
                         "0b7c1f7e-8a51-4c4c-9a4b-2b1b6f0f6a1g", "0b7c1f7e_8a51-4c4c-9a4b-2b1b6f0f6a11"}) {
    auto m = sample("hi");
    m.id = id;
    EXPECT_NE(unstorable_reason(m).find("is not a UUID"), std::string::npos) << id;
  }
  auto m = sample(std::string("a\0b", 3));
  EXPECT_EQ(unstorable_reason(m), "data.content contains a NUL character");
  m = sample("hi");
  m.user_id = std::string("u\0", 2);
  EXPECT_EQ(unstorable_reason(m), "data.user_id contains a NUL character");
  m = sample("hi");
  m.user_id = std::string(max_stored_user_id_bytes, 'u');
  EXPECT_EQ(unstorable_reason(m), "");
  m.user_id += 'u';
  EXPECT_EQ(unstorable_reason(m), "data.user_id is 2049 bytes, over the 2048 the store's per-user index takes");
  // A NUL in the id is shown, not cut off at it.
  m = sample("hi");
  m.id = std::string("x\0y", 3);
  EXPECT_EQ(unstorable_reason(m), "data.id \"x y\" is not a UUID");
}

TEST(SseFrame, IsIdThenOneDataLine) {
  EXPECT_EQ(sse_event_frame(sample("hi")),
            "id: 42\ndata: "
            "{\"id\":\"0b7c1f7e-8a51-4c4c-9a4b-2b1b6f0f6a11\",\"user_id\":\"alice\",\"content\":\"hi\","
            "\"created_at\":\"2024-05-06T07:08:09.123456Z\"}\n\n");
}

TEST(SseFrame, ContentCannotForgeAnEvent) {
  for (const char* evil : {"a\nb", "a\rb", "a\r\nb", "x\n\ndata: {\"id\":\"forged\"}\n\n", "\n\nid: 999\n\n",
                           "\u2028\u2029", ": comment\n"}) {
    const auto f = sse_event_frame(sample(evil));
    // Exactly one event: the only blank line is the terminator, the only raw
    // line breaks are the two that end "id:" and "data:".
    EXPECT_EQ(f.find("\n\n"), f.size() - 2) << evil;
    EXPECT_EQ(std::count(f.begin(), f.end(), '\n'), 3) << evil;
    EXPECT_EQ(f.find('\r'), std::string::npos) << evil;
    const auto data = f.substr(f.find("data: ") + 6, f.size() - f.find("data: ") - 8);
    EXPECT_EQ(boost::json::parse(data).as_object().at("content").as_string(), evil);
  }
}

TEST(MessageId, RandomIdsAreUuidsAndDiffer) {
  const auto a = random_message_id(), b = random_message_id();
  EXPECT_EQ(a.size(), 36u);
  EXPECT_EQ(a[14], '7');  // UUIDv7: time-ordered
  EXPECT_TRUE(a[19] == '8' || a[19] == '9' || a[19] == 'a' || a[19] == 'b');
  EXPECT_NE(a, b);
}

// RFC 9562 §5.7: 48 bits of Unix milliseconds, version 7, variant 0b10, and
// the other 74 bits random; written 8-4-4-4-12 in lowercase hex.
TEST(MessageId, Uuid7CarriesTheTimeAndRandomBits) {
  const timestamp t0{std::chrono::milliseconds(0x0123456789AB)};
  std::vector<std::string> ids;
  for (int i = 0; i < 2000; ++i) {
    std::string id;
    append_uuid7(id, t0 + std::chrono::milliseconds(i / 2));
    ASSERT_EQ(id.size(), 36u);
    for (std::size_t k = 0; k < id.size(); ++k) {
      if (k == 8 || k == 13 || k == 18 || k == 23) {
        ASSERT_EQ(id[k], '-') << id;
      } else {
        ASSERT_TRUE(std::isxdigit(static_cast<unsigned char>(id[k])) && !std::isupper(id[k])) << id;
      }
    }
    std::string hex;
    for (char c : id)
      if (c != '-') hex += c;
    EXPECT_EQ(std::stoull(hex.substr(0, 12), nullptr, 16), 0x0123456789ABu + static_cast<unsigned>(i / 2)) << id;
    EXPECT_EQ(hex[12], '7') << id;
    EXPECT_NE(std::string_view("89ab").find(hex[16]), std::string_view::npos) << id;
    ids.push_back(hex);
  }
  // One thread's ids sort in the order it made them, within a millisecond
  // too (two per millisecond here).
  for (std::size_t i = 1; i < ids.size(); ++i) EXPECT_LT(ids[i - 1], ids[i]) << i;
  // The random digits take many values: 17..31 all sixteen (16 keeps the
  // variant's two bits, so four), and the counter's first digit, which
  // starts each millisecond below 8, at least eight.
  for (std::size_t k = 13; k < 32; ++k) {
    std::set<char> seen;
    for (const auto& h : ids) seen.insert(h[k]);
    if (k == 13) {
      EXPECT_GE(seen.size(), 8u);
    } else {
      EXPECT_EQ(seen.size(), k == 16 ? 4u : 16u) << "digit " << k;
    }
  }
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), ids.size());
}

// Many ids in one millisecond still sort in the order they were made, up to
// the 2048 the counter has room for at the least.
TEST(MessageId, Uuid7CountsUpWithinAMillisecond) {
  const timestamp t{std::chrono::milliseconds(0x0199AABBCCDD)};
  std::string prev;
  append_uuid7(prev, t - std::chrono::milliseconds(1));  // the count starts afresh at t
  prev.clear();
  for (int i = 0; i < 2048; ++i) {
    std::string id;
    append_uuid7(id, t);
    if (i > 0) {
      ASSERT_LT(prev, id) << i;
    }
    prev = id;
  }
}

TEST(MessageId, IdempotencyKeyGivesAStableIdPerUser) {
  EXPECT_EQ(message_id_for_key("alice", "k1"), message_id_for_key("alice", "k1"));
  EXPECT_NE(message_id_for_key("alice", "k1"), message_id_for_key("bob", "k1"));
  EXPECT_NE(message_id_for_key("alice", "k1"), message_id_for_key("alice", "k2"));
  // The separator keeps ("ab","c") and ("a","bc") apart.
  EXPECT_NE(message_id_for_key("ab", "c"), message_id_for_key("a", "bc"));
  EXPECT_EQ(message_id_for_key("alice", "k1")[14], '5');
}

}  // namespace
}  // namespace feed
