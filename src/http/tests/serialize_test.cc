#include "http/serialize.h"

#include <random>
#include <sstream>
#include <string>

#include <boost/beast/http/write.hpp>
#include <gtest/gtest.h>

namespace feed::http {
namespace {

std::string beast_head(const response& res) {
  std::ostringstream out;
  out << res.base();
  return out.str();
}

std::string ours(const response& res) {
  head_buffer head;
  append_head(res, head);
  return {head.begin(), head.end()};
}

TEST(AppendHead, WritesTheAcceptedAnswerAsBeastDoes) {
  response res{status::accepted, 11};
  res.set(beast::http::field::content_type, "application/json");
  res.set(beast::http::field::server, "feed-api");
  res.body() = R"({"id":"x","status":"accepted"})";
  res.prepare_payload();
  res.keep_alive(true);
  EXPECT_EQ(ours(res), beast_head(res));
  EXPECT_EQ(ours(res).substr(0, 22), "HTTP/1.1 202 Accepted\r");
}

// Any status, version, reason and field set (known and unknown names,
// repeated names, empty values) is written byte for byte as Beast writes it.
TEST(AppendHead, MatchesBeastOnGeneratedResponses) {
  std::mt19937 rng(20261130);
  const std::vector<std::string> names = {"Content-Type", "Retry-After", "X-Custom", "Connection", "Cache-Control",
                                          "Access-Control-Allow-Origin", "Location", "ETag", "x-lower"};
  for (int i = 0; i < 5000; ++i) {
    const unsigned code = std::uniform_int_distribution<unsigned>(100, 599)(rng);
    response res{static_cast<status>(code), rng() % 2 ? 11u : 10u};
    if (rng() % 10 == 0) res.reason("Custom Reason");
    const int fields = static_cast<int>(rng() % 8);
    for (int f = 0; f < fields; ++f) {
      std::string value(rng() % 20, 'v');
      for (auto& c : value) c = static_cast<char>('!' + rng() % 90);
      res.insert(names[rng() % names.size()], value);
    }
    if (rng() % 2) res.keep_alive(rng() % 2 == 0);
    if (rng() % 2) res.content_length(rng() % 100000);
    EXPECT_EQ(ours(res), beast_head(res)) << "case " << i;
  }
}

}  // namespace
}  // namespace feed::http
