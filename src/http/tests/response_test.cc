#include "http/response.h"

#include <vector>

#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

namespace feed::http {
namespace {

// The expected text, with each '?' standing for U+FFFD.
std::string with_replacements(std::string_view pattern) {
  std::string out;
  for (char c : pattern) out += c == '?' ? std::string_view("\xEF\xBF\xBD") : std::string_view(&c, 1);
  return out;
}

TEST(ToValidUtf8, KeepsValidText) {
  const std::vector<std::string_view> valid = {
      "", "plain", "caf\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80", "\xF4\x8F\xBF\xBF",
      "\xED\x9F\xBF", "\xEE\x80\x80", std::string_view("a\0b", 3)};
  for (std::string_view s : valid) EXPECT_EQ(to_valid_utf8(s), s);
}

// One U+FFFD per maximal subpart of an ill-formed sequence (Unicode §3.9,
// Table 3-8), as browsers and Python decode.
TEST(ToValidUtf8, ReplacesEachMaximalInvalidSubpart) {
  const std::vector<std::pair<std::string_view, std::string_view>> cases = {
      {"\xFF", "?"},
      {"/api/\xFF\xFE", "/api/??"},
      {"a\xC3", "a?"},             // truncated at the end
      {"\xC3\x28", "?("},          // a bad trail byte is kept as itself
      {"\xC0\xAF", "??"},          // overlong
      {"\xE0\x80\x80", "???"},     // overlong
      {"\xED\xA0\x80", "???"},     // surrogate
      {"\xF4\x90\x80\x80", "????"},  // above U+10FFFF
      {"\xF0\x9F\x98", "?"},       // truncated 4-byte sequence
      {"\xF0\x9F\x98x", "?x"},
      {"\xE2\x82", "?"},
      {"\x80\xBF", "??"},          // lone trail bytes
  };
  for (const auto& [in, expected] : cases) EXPECT_EQ(to_valid_utf8(in), with_replacements(expected)) << in;
}

TEST(ErrorResponse, BodyIsAlwaysUtf8Json) {
  request req;
  req.version(11);
  std::string every_byte;
  for (int b = 0; b < 256; ++b) every_byte.push_back(static_cast<char>(b));
  for (std::string_view message : {std::string_view("no such endpoint: /api/\xFF"), std::string_view(every_byte),
                                   std::string_view("'\xC3\x28\xED\xA0\x80'")}) {
    auto res = error_response(req, status::bad_request, message);
    EXPECT_EQ(to_valid_utf8(res.body()), res.body());
    auto parsed = boost::json::parse(res.body());
    ASSERT_TRUE(parsed.is_object());
    EXPECT_EQ(std::string_view(parsed.at("error").as_string()), to_valid_utf8(message));
  }
}

TEST(StripBodyForHead, KeepsTheGetLengthAndDropsTheBody) {
  response res{status::ok, 11};
  res.body() = "{\"status\":\"ok\"}\n";
  strip_body_for_head(res);
  EXPECT_TRUE(res.body().empty());
  EXPECT_EQ(res[beast::http::field::content_length], "16");
}

}  // namespace
}  // namespace feed::http
