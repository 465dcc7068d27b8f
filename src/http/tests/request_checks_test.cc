#include "http/request_checks.h"

#include <initializer_list>
#include <string>
#include <utility>

#include <boost/beast/http/error.hpp>
#include <gtest/gtest.h>

namespace feed::http {
namespace {

using fields_list = std::initializer_list<std::pair<std::string_view, std::string_view>>;

request head(verb method, std::string_view target, unsigned version, fields_list fields) {
  request req{method, target, version};
  for (const auto& [name, value] : fields) req.insert(name, value);
  return req;
}

request get11(fields_list fields) { return head(verb::get, "/api/health", 11, fields); }
request post11(fields_list fields) { return head(verb::post, "/api/messages", 11, fields); }

std::optional<status> refused(const request& req) {
  auto r = check_request_head(req);
  if (r) {
    EXPECT_FALSE(r->message.empty());
  }
  return r ? std::optional<status>(r->code) : std::nullopt;
}

TEST(RequestChecks, AcceptsOrdinaryRequests) {
  EXPECT_EQ(refused(get11({{"Host", "127.0.0.1:8090"}})), std::nullopt);
  EXPECT_EQ(refused(get11({{"Host", "[::1]:8090"}})), std::nullopt);
  EXPECT_EQ(refused(get11({{"Host", ""}})), std::nullopt);
  EXPECT_EQ(refused(head(verb::get, "/api/health", 10, {})), std::nullopt);
  EXPECT_EQ(refused(post11({{"Host", "x"}, {"Content-Length", "5"}})), std::nullopt);
  EXPECT_EQ(refused(post11({{"Host", "x"}, {"Transfer-Encoding", "chunked"}})), std::nullopt);
  EXPECT_EQ(refused(post11({{"Host", "x"}, {"Transfer-Encoding", "Chunked"}})), std::nullopt);
}

TEST(RequestChecks, TransferEncodingMustEndInChunked) {
  for (const char* coding : {"identity", "chunked, identity", "gzip", "xchunked", "", " , ", "chunked;q=1"})
    EXPECT_EQ(refused(post11({{"Host", "x"}, {"Transfer-Encoding", coding}})), status::bad_request) << coding;
}

TEST(RequestChecks, ChunkedOnlyOnceAndAlone) {
  EXPECT_EQ(refused(post11({{"Host", "x"}, {"Transfer-Encoding", "chunked, chunked"}})), status::bad_request);
  EXPECT_EQ(refused(post11({{"Host", "x"}, {"Transfer-Encoding", "chunked"}, {"Transfer-Encoding", "chunked"}})),
            status::bad_request);
  EXPECT_EQ(refused(post11({{"Host", "x"}, {"Transfer-Encoding", "gzip, chunked"}})), status::not_implemented);
  EXPECT_EQ(refused(post11({{"Host", "x"}, {"Transfer-Encoding", "gzip"}, {"Transfer-Encoding", "chunked"}})),
            status::not_implemented);
  // The parser frames only the plain spelling; anything else must not pass.
  EXPECT_EQ(refused(post11({{"Host", "x"}, {"Transfer-Encoding", ", chunked"}})), status::bad_request);
}

TEST(RequestChecks, TransferEncodingWithContentLengthOrInHttp10) {
  EXPECT_EQ(refused(post11({{"Host", "x"}, {"Transfer-Encoding", "chunked"}, {"Content-Length", "5"}})),
            status::bad_request);
  EXPECT_EQ(refused(post11({{"Host", "x"}, {"Content-Length", "5"}, {"Transfer-Encoding", "identity"}})),
            status::bad_request);
  EXPECT_EQ(refused(head(verb::post, "/api/messages", 10, {{"Transfer-Encoding", "chunked"}})), status::bad_request);
}

TEST(RequestChecks, HostExactlyOnceInHttp11AndValid) {
  EXPECT_EQ(refused(get11({})), status::bad_request);
  EXPECT_EQ(refused(get11({{"Host", "a"}, {"Host", "b"}})), status::bad_request);
  EXPECT_EQ(refused(get11({{"Host", "a"}, {"host", "a"}})), status::bad_request);
  EXPECT_EQ(refused(head(verb::get, "/api/health", 10, {{"Host", "a"}, {"Host", "a"}})), status::bad_request);
  for (const char* bad : {"a b", "user@a", "a:b", "a/b", "[::1"})
    EXPECT_EQ(refused(get11({{"Host", bad}})), status::bad_request) << bad;
}

TEST(RequestChecks, HeadersThatNameOneValueAppearOnce) {
  EXPECT_EQ(refused(post11({{"Host", "x"}, {"Content-Type", "application/json"}, {"Content-Type", "text/plain"}})),
            status::bad_request);
  EXPECT_EQ(refused(post11({{"Host", "x"}, {"Content-Length", "5"}, {"Content-Length", "5"}})), status::bad_request);
  EXPECT_EQ(refused(get11({{"Host", "x"}, {"Last-Event-ID", "1"}, {"Last-Event-ID", "2"}})), status::bad_request);
  EXPECT_EQ(refused(get11({{"Host", "x"}, {"Last-Event-ID", "1"}})), std::nullopt);
}

TEST(RequestChecks, TargetForms) {
  auto with_target = [](verb m, std::string_view target) { return head(m, target, 11, {{"Host", "x"}}); };
  EXPECT_EQ(refused(with_target(verb::get, "http://127.0.0.1:8090/api/health?x=1")), std::nullopt);
  EXPECT_EQ(refused(with_target(verb::get, "HTTPS://example.com")), std::nullopt);
  EXPECT_EQ(refused(with_target(verb::options, "*")), std::nullopt);
  for (const char* bad : {"*", "ftp://x/api/health", "127.0.0.1:8090", "api/health", "http:/api/health",
                          "http:///api/health", "http://user@x/api/health", "http://x/a#frag", ""})
    EXPECT_EQ(refused(with_target(verb::get, bad)), status::bad_request) << bad;
}

TEST(RequestChecks, AbsoluteFormRoutesByPathAndQuery) {
  auto url = parse_request_target("http://127.0.0.1:8090/api/messages?limit=2");
  ASSERT_TRUE(url);
  EXPECT_EQ(url->path(), "/api/messages");
  EXPECT_EQ(url->query(), "limit=2");
  url = parse_request_target("http://example.com");
  ASSERT_TRUE(url);
  EXPECT_EQ(url->path(), "");
  url = parse_request_target("/api/%FF?a=b");
  ASSERT_TRUE(url);
  EXPECT_EQ(url->path(), "/api/\xFF");
  url = parse_request_target("*");
  ASSERT_TRUE(url);
  EXPECT_TRUE(url->empty());
}

TEST(UnreadableRequest, OversizedBodyIs413NamingTheLimit) {
  const auto r = unreadable_request(beast::http::error::body_limit, 16384, 8192);
  EXPECT_EQ(r.code, status::payload_too_large);
  EXPECT_EQ(r.message, "request body exceeds 16384 bytes");
  const auto declared = body_too_large(16384);
  EXPECT_EQ(declared.code, r.code);
  EXPECT_EQ(declared.message, r.message);
}

TEST(UnreadableRequest, OversizedHeaderIs431NamingTheLimit) {
  const auto r = unreadable_request(beast::http::error::header_limit, 16384, 8192);
  EXPECT_EQ(r.code, status::request_header_fields_too_large);
  EXPECT_EQ(r.message, "request header exceeds 8192 bytes");
}

TEST(UnreadableRequest, AFullReadBufferIs413) {
  const auto r = unreadable_request(beast::http::error::buffer_overflow, 16384, 8192);
  EXPECT_EQ(r.code, status::payload_too_large);
  EXPECT_EQ(r.message, "a chunk-size line or trailer of the request is too long");
}

TEST(UnreadableRequest, AnyOtherParseErrorIs400) {
  for (const auto ec : {beast::http::error::bad_method, beast::http::error::bad_chunk,
                        beast::http::error::bad_content_length, beast::http::error::bad_field}) {
    const auto r = unreadable_request(ec, 16384, 8192);
    EXPECT_EQ(r.code, status::bad_request);
    EXPECT_TRUE(r.message.starts_with("malformed HTTP request: ")) << r.message;
  }
}

// RFC 9110 §5.3 and RFC 9112 §9.3: every Connection line counts, as one list.
TEST(RequestChecks, KeepAliveReadsEveryConnectionLine) {
  struct example {
    unsigned version;
    fields_list connection;
    bool keep;
  };
  const example examples[] = {
      {11, {}, true},
      {11, {{"Connection", "close"}}, false},
      {11, {{"Connection", "Close"}}, false},
      {11, {{"Connection", "keep-alive, close"}}, false},
      {11, {{"Connection", "keep-alive"}, {"Connection", "close"}}, false},
      {11, {{"Connection", "x"}, {"Connection", "close"}}, false},
      {11, {{"Connection", "te"}, {"Connection", " close , te"}}, false},
      {11, {{"Connection", "closed"}}, true},
      {10, {}, false},
      {10, {{"Connection", "keep-alive"}}, true},
      {10, {{"Connection", "x"}, {"Connection", "Keep-Alive"}}, true},
      {10, {{"Connection", "keep-alive"}, {"Connection", "close"}}, false},
  };
  for (const auto& e : examples) {
    request req{verb::get, "/api/health", e.version};
    req.insert("Host", "h");
    std::string lines;
    for (const auto& [name, value] : e.connection) {
      req.insert(name, value);
      lines += std::string(value) + "; ";
    }
    accepted_head accepted;
    ASSERT_FALSE(check_request_head(req, accepted)) << lines;
    EXPECT_EQ(accepted.keep_alive, e.keep) << "HTTP/1." << e.version % 10 << " Connection: " << lines;
  }
}

}  // namespace
}  // namespace feed::http
