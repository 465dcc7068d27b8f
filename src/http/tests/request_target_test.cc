#include "http/request_target.h"

#include <cctype>
#include <random>
#include <string>
#include <vector>

#include <boost/url/parse.hpp>
#include <gtest/gtest.h>

namespace feed::http {
namespace {

// What the server did before the fast paths, and must still do.
bool reference_valid_host(std::string_view value) {
  if (value.empty()) return true;
  auto authority = boost::urls::parse_authority(value);
  return authority && !authority->has_userinfo();
}

std::string reference_path(boost::urls::url_view url, std::string_view target) {
  std::string encoded(url.encoded_path());
  for (auto& c : encoded) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (encoded.find("%2f") != std::string::npos) return std::string(url.encoded_path());
  std::string path = url.path();
  return path.empty() && target != "*" ? "/" : path;
}

// The fast paths against boost::urls on one input; a failure names it.
void expect_same_as_boost(std::string_view input) {
  SCOPED_TRACE(::testing::Message() << "input '" << input << "' (" << input.size() << " bytes)");
  const auto reference = parse_request_target(input);
  const auto target = request_target::parse(input);
  ASSERT_EQ(target.has_value(), reference.has_value());
  if (const auto plain = plain_origin_path(input)) {
    ASSERT_TRUE(reference);
    EXPECT_EQ(reference->path(), *plain);
    EXPECT_EQ(reference->encoded_path(), *plain);
    const auto q = input.find('?');
    EXPECT_EQ(reference->has_query(), q != std::string_view::npos);
    if (q != std::string_view::npos) {
      EXPECT_EQ(reference->encoded_query(), input.substr(q + 1));
    }
    EXPECT_FALSE(reference->has_fragment());
  }
  if (target) {
    EXPECT_EQ(target->text(), input);
    EXPECT_EQ(target->path(), reference_path(*reference, input));
    const boost::urls::url_view url = *target;
    EXPECT_EQ(url.buffer(), reference->buffer());
    EXPECT_EQ(url.encoded_query(), reference->encoded_query());
    EXPECT_EQ(url.has_query(), reference->has_query());
  }
  EXPECT_EQ(valid_host(input), reference_valid_host(input));
  if (plain_host(input)) {
    EXPECT_TRUE(reference_valid_host(input));
  }
}

const std::vector<std::string>& adversarial() {
  static const std::vector<std::string> inputs = [] {
    std::vector<std::string> v = {
        "", "/", "*", "**", "/*", "?", "/?", "/??", "/?#", "#", "/#", "/a#b", "/a?b#c", "%", "/%", "/a%", "/a%2",
        "/a%2F", "/a%2f?x", "/a%zz", "/a%%41", "/%41", "/a?%", "/a?b=%", "/a?b=%4", "/a?b=%41&c", "//", "//a",
        "//a/b", "///", "/..", "/../a", "/./a", "/a/../..", "/a/.", "/a//b", "/a?b?c//d", "/a?/b?", "/a b", "/a\tb",
        "/a\x7f", "/\x80", "/a\xff", "/a?\xc3\xa9", "/é", "/a?é", "/a+b", "/a?b+c", "/a:b@c", "/a?b:c@d",
        "/[", "/a]", "/a?[", "/a?]", "/a{b}", "/a|b", "/a\\b", "/a^b", "/a`b", "/a\"b", "/a<b>", "/api/messages",
        "/api/messages?limit=20&before=120&user_id=john_doe", "/!$&'()*+,;=:@-._~", "/a?!$&'()*+,;=:@-._~/?",
        "http://x", "http://x/", "http://x/a?b", "https://x:443/a", "HTTP://x/a", "http://", "http:///a", "http:/a",
        "http://u@x/a", "http://[::1]:8090/api/health", "http://[::1/a", "http://x:99999/a", "http://x:/a",
        "http://x/a#f", "ftp://x/a", "x", "x:1", "a:b", "a b", "user@a", "a@b:1", "[::1]", "[::1]:8090", "[::1",
        "::1", "[v1.x]", "[vz.x]", "127.0.0.1", "127.0.0.1:8090", "999.1.1.1:1", "a:", ":", ":80", "a:0",
        "a:65535", "a:65536", "a:99999", "a:123456", "a:-1", "a:1a", "a:1:2", "a%41", "a%4", "a%", "%41:1",
        "a.b.c-d_e~f", "a!$&'()*+,;=", "é", "a\x80", "a/b", "a?b", "a#b", "localhost", "localhost:8090",
        "127.0.0.1$8090", "1.2.3.4.5", "1.2.3.4a", "1.2.3.25", "1.2.3.256", "1.2.3.2567", "01.2.3.4", "0.0.0.0",
        "255.255.255.255:65535", "256.1.1.1", "1.2.3", "1.2.3.", "1..2.3", "1a", "1", "9.9.9.9:1", "1.2.3.4$",
    };
    v.push_back("/" + std::string(10000, 'a'));
    v.push_back("/" + std::string(10000, 'a') + "?" + std::string(10000, 'b'));
    v.push_back(std::string(10000, 'h'));
    v.push_back(std::string(10000, 'h') + ":1");
    v.push_back("/" + std::string(3000, '%'));
    v.push_back(std::string(65536, '/'));
    return v;
  }();
  return inputs;
}

TEST(RequestTarget, AdversarialInputsMatchBoostUrls) {
  for (const auto& input : adversarial()) {
    expect_same_as_boost(input);
    if (::testing::Test::HasFailure()) return;
  }
}

// Random strings over the characters that steer the grammars, with some
// inputs starting like each target form so that most reach deep.
TEST(RequestTarget, RandomInputsMatchBoostUrls) {
  static constexpr std::string_view kAlphabet =
      "/?#%[]:@.-_~!$&'()*+,;=aZz09 \t\"<>\\^`{|}\x7f\x80\xc3\xa9\xff";
  static constexpr std::string_view kHex = "0123456789abcdefABCDEFgG";
  static constexpr std::string_view kPrefixes[] = {"", "/", "//", "/api/", "http://", "https://x", "*", "x:", "[",
                                                    "1", "127.0.0.1", "http://1.2.3.4"};
  std::mt19937 rng(20240611);
  auto pick = [&rng](std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng); };
  for (int i = 0; i < 200000; ++i) {
    std::string input(kPrefixes[pick(std::size(kPrefixes))]);
    const std::size_t length = pick(i % 100 == 0 ? 300 : 24);
    for (std::size_t k = 0; k < length; ++k) {
      const std::size_t r = pick(10);
      if (r < 2) input.push_back("abcdefghijklmnopqrstuvwxyz0123456789"[pick(36)]);
      else if (r < 3) input.push_back("0123456789.."[pick(12)]);
      else if (r < 4) input.push_back(kHex[pick(kHex.size())]);
      else input.push_back(kAlphabet[pick(kAlphabet.size())]);
    }
    expect_same_as_boost(input);
    if (::testing::Test::HasFailure()) return;
  }
}

TEST(RequestTarget, PlainOriginFormIsSplitAtTheFirstQuestionMark) {
  EXPECT_EQ(plain_origin_path("/api/messages"), "/api/messages");
  EXPECT_EQ(plain_origin_path("/api/messages?limit=2?x"), "/api/messages");
  EXPECT_EQ(plain_origin_path("/?"), "/");
  EXPECT_EQ(plain_origin_path("/a%20b"), std::nullopt);  // decoding is boost::urls' job
  EXPECT_EQ(plain_origin_path("/a#b"), std::nullopt);
  EXPECT_EQ(plain_origin_path("http://x/a"), std::nullopt);
  EXPECT_EQ(plain_origin_path(""), std::nullopt);
}

TEST(RequestTarget, PathRoutesAsTheDecodedPath) {
  EXPECT_EQ(request_target::parse("/api/messages?limit=2")->path(), "/api/messages");
  EXPECT_EQ(request_target::parse("/api/%6Dessages")->path(), "/api/messages");
  // An escaped '/' is not a separator: such a path names no endpoint.
  EXPECT_EQ(request_target::parse("/api%2Fmessages")->path(), "/api%2Fmessages");
  EXPECT_EQ(request_target::parse("/%61pi%2fmessages")->path(), "/%61pi%2fmessages");
  EXPECT_EQ(request_target::parse("http://x/api%2Fhealth")->path(), "/api%2Fhealth");
  EXPECT_EQ(request_target::parse("http://x:1/api/health?y")->path(), "/api/health");
  EXPECT_EQ(request_target::parse("http://x")->path(), "/");
  EXPECT_EQ(request_target::parse("*")->path(), "");
  EXPECT_FALSE(request_target::parse("/a b"));
}

TEST(RequestTarget, QueryReadsThroughTheUrl) {
  const auto target = request_target::parse("/api/messages?limit=2&user_id=a%20b");
  ASSERT_TRUE(target);
  const boost::urls::url_view url = *target;
  EXPECT_EQ((*url.params().find("user_id")).value, "a b");
  EXPECT_EQ(url.buffer().data(), target->text().data());  // a view of the request's own bytes
}

TEST(RequestTarget, PlainHosts) {
  for (const char* host : {"x", "127.0.0.1", "127.0.0.1:8090", "localhost:1", "a-b.c_d~e:65535", "a:0", "a1.2.3.4.5"})
    EXPECT_TRUE(plain_host(host)) << host;
  // An address followed by more of a reg-name is left to boost::urls, which refuses it.
  for (const char* host : {"", ":1", "a:", "a:123456", "[::1]", "a%41", "u@a", "a b", "a:1:2", "127.0.0.1$8090",
                           "1.2.3.4.5", "1a"})
    EXPECT_FALSE(plain_host(host)) << host;
}

}  // namespace
}  // namespace feed::http
