#include "bot/sse_parser.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace feed::bot {
namespace {

struct seen {
  std::string id, event, data;
  bool operator==(const seen&) const = default;
};

std::vector<seen> parse_in_pieces(std::string_view stream, std::size_t piece) {
  sse_parser p;
  std::vector<seen> out;
  for (std::size_t at = 0; at < stream.size(); at += piece) {
    p.feed(stream.substr(at, piece), [&](const sse_event& e) {
      out.push_back({std::string(e.id), std::string(e.event), std::string(e.data)});
    });
  }
  return out;
}

TEST(SseParser, FeedApiFraming) {
  const std::string s =
      "id: 41\ndata: {\"id\":\"a\",\"content\":\"hi\"}\n\n"
      ": keep-alive\n\n"
      "id: 42\ndata: {\"id\":\"b\"}\n\n";
  const std::vector<seen> want = {{"41", "", R"({"id":"a","content":"hi"})"}, {"42", "", R"({"id":"b"})"}};
  EXPECT_EQ(parse_in_pieces(s, s.size()), want);
}

TEST(SseParser, EventsSplitAtEveryPossibleByte) {
  const std::string s = "id: 1\ndata: first\n\nid: 2\r\ndata: second\r\n\r\n: c\rid: 3\rdata: third\r\r";
  const std::vector<seen> want = {{"1", "", "first"}, {"2", "", "second"}, {"3", "", "third"}};
  for (std::size_t piece = 1; piece <= s.size(); ++piece) {
    EXPECT_EQ(parse_in_pieces(s, piece), want) << "piece size " << piece;
  }
}

TEST(SseParser, CrLfSplitBetweenReadsIsOneLineEnd) {
  sse_parser p;
  std::vector<std::string> data;
  auto on = [&](const sse_event& e) { data.emplace_back(e.data); };
  p.feed("data: x\r", on);
  p.feed("\n\r", on);  // LF completes CRLF; then CR is the blank line
  p.feed("\n", on);    // LF of that CRLF, not another blank line
  p.feed("data: y\n\n", on);
  EXPECT_EQ(data, (std::vector<std::string>{"x", "y"}));
}

TEST(SseParser, CommentsAreCountedNotDispatched) {
  sse_parser p;
  int events = 0;
  p.feed(": keep-alive\n\n: another\n\n:\n\n", [&](const sse_event&) { ++events; });
  EXPECT_EQ(events, 0);
  EXPECT_EQ(p.comments(), 3u);
}

TEST(SseParser, MultiLineDataJoinedWithNewline) {
  const auto got = parse_in_pieces("data: one\ndata:two\ndata\ndata:  four\n\n", 3);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].data, "one\ntwo\n\n four");
}

TEST(SseParser, IdPersistsAndEventTypeResets) {
  const auto got = parse_in_pieces("id: 7\nevent: notice\ndata: a\n\ndata: b\n\n", 1);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0], (seen{"7", "notice", "a"}));
  EXPECT_EQ(got[1], (seen{"7", "", "b"}));
}

TEST(SseParser, EventWithoutDataIsNotDispatched) {
  sse_parser p;
  int events = 0;
  p.feed("id: 9\n\nevent: x\n\nretry: 10\nunknown: y\n\n", [&](const sse_event&) { ++events; });
  EXPECT_EQ(events, 0);
  EXPECT_EQ(p.last_event_id(), "9");
}

TEST(SseParser, ResetPartialDropsHalfAnEvent) {
  sse_parser p;
  std::vector<std::string> data;
  auto on = [&](const sse_event& e) { data.emplace_back(e.data); };
  p.feed("data: lost\ndata: par", on);
  p.reset_partial();
  p.feed("data: kept\n\n", on);
  EXPECT_EQ(data, (std::vector<std::string>{"kept"}));
}

}  // namespace
}  // namespace feed::bot
