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

// A stream lost after an event's id line and before its end did not
// deliver that event: the resume point stays at the last one that ended,
// wherever the stream was cut (WHATWG: the last event ID is set when an
// event is dispatched).
TEST(SseParser, AnEventCutOffBeforeItsEndDoesNotMoveTheLastEventId) {
  const std::string whole = "id: 10\ndata: ten\n\nid: 11\ndata: eleven\n\n";
  const std::size_t eleven = whole.find("id: 11");
  for (std::size_t cut = eleven; cut < whole.size(); ++cut) {
    sse_parser p;
    std::vector<std::string> ids;
    auto on = [&](const sse_event& e) { ids.emplace_back(e.id); };
    p.feed(std::string_view(whole).substr(0, cut), on);
    EXPECT_EQ(p.last_event_id(), "10") << "cut at " << cut;
    p.reset_partial();
    // The stream resumed after 10 sends 11 again, without its id line cut.
    p.feed("data: eleven\n\n", on);
    EXPECT_EQ(ids, (std::vector<std::string>{"10", "10"})) << "cut at " << cut;
  }
  sse_parser p;
  p.feed(whole, [](const sse_event&) {});
  EXPECT_EQ(p.last_event_id(), "11");
}

}  // namespace
}  // namespace feed::bot
