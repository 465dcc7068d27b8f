#include "model/media_type.h"

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

TEST(MediaType, Charset) {
  EXPECT_EQ(charset_of("application/json"), "");
  EXPECT_EQ(charset_of("application/json; charset=utf-8"), "utf-8");
  EXPECT_EQ(charset_of("application/json;CHARSET = \"UTF-8\" ; x=y"), "UTF-8");
  EXPECT_EQ(charset_of("application/json; x=y; charset=latin1"), "latin1");
  EXPECT_EQ(charset_of("application/json; charset=a; charset=b"), "a");
  EXPECT_EQ(charset_of("application/json; charset"), "");
  EXPECT_EQ(charset_of("application/json; charset=\""), "\"");
}

TEST(MediaType, TrimOws) {
  EXPECT_EQ(trim_ows(" \t a b \t "), "a b");
  EXPECT_EQ(trim_ows(" \t "), "");
  EXPECT_EQ(trim_ows(""), "");
  EXPECT_EQ(trim_ows("\na\r"), "\na\r");
}

}  // namespace
}  // namespace feed
