#include "bot/http_response.h"

#include <gtest/gtest.h>

namespace feed::bot {
namespace {

TEST(HttpResponse, AcceptedWithLength) {
  const std::string r = "HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\ncontent-length: 12\r\n\r\n{\"id\":\"x\"}..";
  response_head h;
  ASSERT_EQ(parse_response_head(r, h), head_parse::ok);
  EXPECT_EQ(h.status, 202);
  EXPECT_EQ(h.content_length, 12u);
  EXPECT_FALSE(h.chunked);
  EXPECT_FALSE(h.close);
  EXPECT_EQ(h.head_bytes, r.find("{"));
}

TEST(HttpResponse, RetryAfterAndClose) {
  response_head h;
  ASSERT_EQ(parse_response_head("HTTP/1.1 503 Service Unavailable\r\nRetry-After: 2\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", h),
            head_parse::ok);
  EXPECT_EQ(h.status, 503);
  EXPECT_EQ(h.retry_after_s, 2.0);
  EXPECT_TRUE(h.close);
  ASSERT_EQ(parse_response_head("HTTP/1.1 503 X\r\nRetry-After: Wed, 21 Oct 2015 07:28:00 GMT\r\n\r\n", h), head_parse::ok);
  EXPECT_EQ(h.retry_after_s, 1.0);
}

TEST(HttpResponse, ChunkedWinsOverLength) {
  response_head h;
  ASSERT_EQ(parse_response_head("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\nContent-Length: 5\r\n\r\n", h),
            head_parse::ok);
  EXPECT_TRUE(h.chunked);
  EXPECT_FALSE(h.content_length);
}

TEST(HttpResponse, IncompleteAndBad) {
  response_head h;
  EXPECT_EQ(parse_response_head("HTTP/1.1 202 Accepted\r\nContent-Len", h), head_parse::incomplete);
  EXPECT_EQ(parse_response_head("SMTP ready\r\n\r\n", h), head_parse::bad);
  EXPECT_EQ(parse_response_head("HTTP/1.1 2x2 OK\r\n\r\n", h), head_parse::bad);
  EXPECT_EQ(parse_response_head("HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", h), head_parse::bad);
  EXPECT_EQ(parse_response_head("HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n", h), head_parse::bad);
}

TEST(HttpResponse, Http10ClosesByDefault) {
  response_head h;
  ASSERT_EQ(parse_response_head("HTTP/1.0 200 OK\r\n\r\n", h), head_parse::ok);
  EXPECT_TRUE(h.close);
}

TEST(HttpResponse, EventStreamIsTheMediaTypeWhateverItsCaseAndParameters) {
  for (const char* type : {"text/event-stream", "Text/Event-Stream", "text/event-stream; charset=utf-8",
                           " text/event-stream ;x=y"}) {
    response_head h;
    const std::string head = std::string("HTTP/1.1 200 OK\r\nContent-Type:") + type + "\r\n\r\n";
    ASSERT_EQ(parse_response_head(head, h), head_parse::ok) << type;
    EXPECT_TRUE(h.event_stream) << type;
  }
  for (const char* type : {"text/html", "text/event-streams", "application/json"}) {
    response_head h;
    const std::string head = std::string("HTTP/1.1 200 OK\r\nContent-Type: ") + type + "\r\n\r\n";
    ASSERT_EQ(parse_response_head(head, h), head_parse::ok) << type;
    EXPECT_FALSE(h.event_stream) << type;
  }
  response_head none;
  ASSERT_EQ(parse_response_head("HTTP/1.1 200 OK\r\n\r\n", none), head_parse::ok);
  EXPECT_FALSE(none.event_stream);
}

}  // namespace
}  // namespace feed::bot
