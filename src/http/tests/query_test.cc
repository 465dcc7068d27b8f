#include "http/query.h"

#include <boost/url/parse.hpp>
#include <gtest/gtest.h>

#include "http/handlers/handlers.h"

namespace feed::http {
namespace {

boost::urls::url_view url(std::string_view target) { return boost::urls::parse_origin_form(target).value(); }

TEST(ParseInteger, AcceptsPlainDecimalsInRange) {
  EXPECT_EQ(*parse_integer("0", "n", 0, 10), 0);
  EXPECT_EQ(*parse_integer("10", "n", 0, 10), 10);
  EXPECT_EQ(*parse_integer("007", "n", 0, 10), 7);
  EXPECT_EQ(*parse_integer("-3", "n", -5, 5), -3);
  EXPECT_EQ(*parse_integer("9223372036854775807", "n", 0, INT64_MAX), INT64_MAX);
}

TEST(ParseInteger, RefusesAnythingElse) {
  for (std::string_view bad : {"", " ", "+1", " 1", "1 ", "1\t", "-", "--1", "1.0", "1e3", "0x10", "١", "1,000",
                               "11", "-1", "9223372036854775808", "99999999999999999999", "-9223372036854775809"}) {
    auto r = parse_integer(bad, "n", 0, 10);
    ASSERT_FALSE(r) << "'" << bad << "'";
    EXPECT_TRUE(r.err().is(errc::invalid_input));
  }
}

TEST(ParseInteger, TheErrorNamesTheParameterRangeAndValue) {
  auto r = parse_integer("+5", "limit", 1, 200);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().message, "limit must be an integer from 1 to 200, got '+5'");
}

TEST(QueryParam, DecodesAndTakesTheFirst) {
  EXPECT_EQ(query_param(url("/p?a=1&b=2"), "b"), "2");
  EXPECT_EQ(query_param(url("/p?a=%31%32"), "a"), "12");
  EXPECT_EQ(query_param(url("/p?a=x+y"), "a"), "x y");
  EXPECT_EQ(query_param(url("/p?a=1&a=2"), "a"), "1");
  EXPECT_EQ(query_param(url("/p?a="), "a"), "");
  EXPECT_EQ(query_param(url("/p?a"), "a"), "");
  EXPECT_EQ(query_param(url("/p?ab=1"), "a"), std::nullopt);
  EXPECT_EQ(query_param(url("/p"), "a"), std::nullopt);
}

TEST(QueryParam, GivenOnceRefusesANamedParameterTwice) {
  EXPECT_TRUE(given_once(url("/p?a=1&b=2"), {"a", "b"}));
  EXPECT_TRUE(given_once(url("/p?c=1&c=2"), {"a", "b"}));  // not ours to judge
  auto twice = given_once(url("/p?a=1&b=2&b=x"), {"a", "b"});
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.err().message, "query parameter 'b' may be given once");
  EXPECT_FALSE(given_once(url("/p?a&a"), {"a"}));
}

// GET /api/messages's parameters, as list_messages_handler reads them.
class ListQuery : public ::testing::Test {
 protected:
  result<read_query> parse(std::string_view target) { return list_query(url(target), opts); }
  std::string error(std::string_view target) {
    auto q = parse(target);
    EXPECT_FALSE(q) << target;
    return q ? std::string() : q.err().message;
  }
  api_options opts;
};

TEST_F(ListQuery, DefaultsToNewestFirstAndTheDefaultLimit) {
  auto q = parse("/api/messages");
  ASSERT_TRUE(q);
  EXPECT_TRUE(q->newest_first);
  EXPECT_EQ(q->limit, opts.list_default);
  EXPECT_EQ(q->after, seq_t{0});
  EXPECT_EQ(q->up_to, std::nullopt);
  EXPECT_EQ(q->user_id, std::nullopt);
}

TEST_F(ListQuery, RefusesAParameterGivenTwice) {
  EXPECT_EQ(error("/api/messages?limit=1&before=1&limit=5"), "query parameter 'limit' may be given once");
  EXPECT_EQ(error("/api/messages?before=222&before=x"), "query parameter 'before' may be given once");
  EXPECT_EQ(error("/api/messages?user_id=a&user_id=a"), "query parameter 'user_id' may be given once");
}

TEST_F(ListQuery, ReadsEachParameter) {
  auto q = parse("/api/messages?limit=200&before=11&user_id=alice");
  ASSERT_TRUE(q);
  EXPECT_EQ(q->limit, 200u);
  EXPECT_EQ(q->up_to, seq_t{10});
  EXPECT_EQ(q->user_id, "alice");
  q = parse("/api/messages?limit=1&before=1");
  ASSERT_TRUE(q);
  EXPECT_EQ(q->limit, 1u);
  EXPECT_EQ(q->up_to, seq_t{0});
  q = parse("/api/messages?before=9223372036854775807");
  ASSERT_TRUE(q);
  EXPECT_EQ(q->up_to, seq_t{INT64_MAX - 1});
}

TEST_F(ListQuery, LimitIsOneToTheMaximum) {
  for (std::string_view bad : {"0", "-1", "201", "+5", "%2B5", "%205", "5%20", "", "1.5", "9223372036854775808"})
    EXPECT_EQ(error("/api/messages?limit=" + std::string(bad)).rfind("limit must be an integer from 1 to 200", 0),
              0u)
        << bad;
}

TEST_F(ListQuery, BeforeIsAPositiveSeq) {
  for (std::string_view bad : {"0", "-1", "+1", "", "x", "99999999999999999999"})
    EXPECT_EQ(error("/api/messages?before=" + std::string(bad)).rfind("before must be an integer from 1 to ", 0), 0u)
        << bad;
}

TEST_F(ListQuery, UserIdFollowsThePostRules) {
  EXPECT_EQ(error("/api/messages?user_id="), "user_id must not be empty");
  EXPECT_EQ(error("/api/messages?user_id=a%09b"), "user_id must not contain control characters");
  EXPECT_EQ(error("/api/messages?user_id=" + std::string(65, 'u')), "user_id is longer than 64 bytes");
}

TEST_F(ListQuery, TheFirstBadParameterIsNamed) {
  EXPECT_NE(error("/api/messages?user_id=&before=0&limit=0").find("limit"), std::string::npos);
  EXPECT_NE(error("/api/messages?user_id=&before=0").find("before"), std::string::npos);
}

}  // namespace
}  // namespace feed::http
