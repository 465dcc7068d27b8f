#include "model/media_type.h"

#include <string>

#include <gtest/gtest.h>

namespace feed {
namespace {

TEST(MediaType, JsonTypes) {
  EXPECT_TRUE(is_json_media_type("application/json"));
  EXPECT_TRUE(is_json_media_type("APPLICATION/JSON;charset=utf-8"));
  EXPECT_TRUE(is_json_media_type("\tapplication/ld+json "));
  EXPECT_FALSE(is_json_media_type("+json"));
  EXPECT_FALSE(is_json_media_type("application/json5"));
  EXPECT_FALSE(is_json_media_type("text/json-ish"));
  EXPECT_FALSE(is_json_media_type(""));
}

std::string charset(std::string_view content_type) {
  auto r = charset_of(content_type);
  return r ? *r : "error: " + r.err().message;
}

TEST(MediaType, Charset) {
  EXPECT_EQ(charset("application/json"), "");
  EXPECT_EQ(charset("application/json; charset=utf-8"), "utf-8");
  EXPECT_EQ(charset("application/json;CHARSET = \"UTF-8\" ; x=y"), "UTF-8");
  EXPECT_EQ(charset("application/json; x=y; charset=latin1"), "latin1");
  EXPECT_EQ(charset("application/json;;; charset=utf-8;"), "utf-8");
  EXPECT_EQ(charset("application/json; x; y=; charset=utf-8"), "utf-8");
  EXPECT_EQ(charset("application/json; charset=\"utf-8\" \t; x=y"), "utf-8");
}

// RFC 9110 §5.6.6: a quoted value is one value, ';' and escapes included.
TEST(MediaType, QuotedValuesAreReadWhole) {
  EXPECT_EQ(charset("application/json; x=\"a;charset=latin1\""), "");
  EXPECT_EQ(charset("application/json; x=\"a;charset=latin1\"; charset=utf-8"), "utf-8");
  EXPECT_EQ(charset("application/json; x=\"a\\\";charset=latin1\"; charset=utf-8"), "utf-8");
  EXPECT_EQ(charset("application/json; charset=\"utf\\-8\""), "utf-8");
  EXPECT_EQ(charset("application/json; charset=\"a;b\""), "a;b");
}

// Where two readers could each see another charset.
TEST(MediaType, AmbiguousCharsetsAreErrors) {
  for (std::string_view ct : {"application/json; charset=utf-8; charset=latin1",
                              "application/json; charset=latin1; charset=utf-8", "application/json; charset=a; CHARSET=a",
                              "application/json; charset=\"", "application/json; x=\"a;charset=latin1",
                              "application/json; charset=\"utf-8\\\"", "application/json; charset",
                              "application/json; charset=", "application/json; charset=\"\"",
                              "application/json; charset=utf-8; charset", "application/json; charset; charset=utf-8",
                              "application/json; charset=\"utf-8\" junk", "application/json; x=\"q\"junk; charset=utf-8"}) {
    EXPECT_TRUE(charset(ct).starts_with("error: ")) << ct << " -> " << charset(ct);
  }
  EXPECT_EQ(charset("application/json; charset=a; charset=b"), "error: Content-Type names charset more than once");
  EXPECT_EQ(charset("application/json; x=\"open"),
            "error: Content-Type has a quoted parameter value that is not closed");
}

TEST(MediaType, TrimOws) {
  EXPECT_EQ(trim_ows(" \t a b \t "), "a b");
  EXPECT_EQ(trim_ows(" \t "), "");
  EXPECT_EQ(trim_ows(""), "");
  EXPECT_EQ(trim_ows("\na\r"), "\na\r");
}

}  // namespace
}  // namespace feed
