#include "bot/api_list.h"

#include <gtest/gtest.h>

namespace feed::bot {
namespace {

std::vector<api_instance> parse_ok(std::string_view list) {
  std::vector<api_instance> out;
  std::string why;
  EXPECT_TRUE(parse_api_list(list, out, why)) << list << ": " << why;
  return out;
}

std::string parse_bad(std::string_view list) {
  std::vector<api_instance> out;
  std::string why;
  EXPECT_FALSE(parse_api_list(list, out, why)) << list;
  return why;
}

TEST(ApiList, OneUrlAsBefore) {
  const auto l = parse_ok("http://[::1]:8091/");
  ASSERT_EQ(l.size(), 1u);
  EXPECT_EQ(l[0].host, "::1");
  EXPECT_EQ(l[0].port, "8091");
  EXPECT_EQ(l[0].host_header, "[::1]:8091");
  EXPECT_EQ(l[0].url, "http://[::1]:8091");
}

TEST(ApiList, SeveralInOrderWithSpacesAndDefaultPort) {
  const auto l = parse_ok("http://a:1, http://b:2 ,\thttp://c");
  ASSERT_EQ(l.size(), 3u);
  EXPECT_EQ(l[0].url, "http://a:1");
  EXPECT_EQ(l[1].url, "http://b:2");
  EXPECT_EQ(l[2].url, "http://c:80");
  EXPECT_EQ(l[2].host_header, "c:80");
}

TEST(ApiList, EmptyEntriesAreRefused) {
  for (const auto* list : {"", " ", ",http://a:1", "http://a:1,", "http://a:1,,http://b:2", "http://a:1, ,http://b:2"}) {
    EXPECT_NE(parse_bad(list).find("empty"), std::string::npos) << list;
  }
}

TEST(ApiList, OtherSchemesAreRefusedAndNamed) {
  const auto why = parse_bad("http://a:1,https://b:2");
  EXPECT_NE(why.find("https://b:2"), std::string::npos) << why;
  EXPECT_NE(why.find("only http://"), std::string::npos) << why;
  parse_bad("a:1");
  parse_bad("http:/a:1");
}

TEST(ApiList, AnEmptyPortIsTheDefault) {
  const auto got = parse_ok("http://a:,http://[::1]:");
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].url, "http://a:80");
  EXPECT_EQ(got[1].url, "http://[::1]:80");
}

TEST(ApiList, TheSchemeIsReadInAnyCase) {
  const auto got = parse_ok("HTTP://a:1,Http://b:2");
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].url, "http://a:1");
  EXPECT_EQ(got[1].url, "http://b:2");
}

TEST(ApiList, QueriesFragmentsAndUserInformationAreRefusedAndNamed) {
  EXPECT_NE(parse_bad("http://a:1?x=y").find("no query or fragment"), std::string::npos);
  EXPECT_NE(parse_bad("http://a:1/?x=y").find("no query or fragment"), std::string::npos);
  EXPECT_NE(parse_bad("http://a:1#top").find("no query or fragment"), std::string::npos);
  EXPECT_NE(parse_bad("http://user@a:1").find("user information"), std::string::npos);
  EXPECT_NE(parse_bad("http://user:pw@a:1").find("user information"), std::string::npos);
}

TEST(ApiList, DuplicatesAreRefusedAfterNormalising) {
  EXPECT_NE(parse_bad("http://a:1,http://a:1/").find("listed twice"), std::string::npos);
  EXPECT_NE(parse_bad("http://a:80,http://b:2,http://a").find("http://a:80 is listed twice"), std::string::npos);
  // Written differently, compared as written: allowed.
  EXPECT_EQ(parse_ok("http://localhost:1,http://127.0.0.1:1").size(), 2u);
}

TEST(ApiList, BadPortsHostsAndPaths) {
  for (const auto* list : {"http://a:0", "http://a:70000", "http://a:1x", "http://:1", "http://[::1",
                           "http://[::1]x", "http://a:1/api", "http://a:1,http://b:99999"}) {
    parse_bad(list);
  }
}

}  // namespace
}  // namespace feed::bot
