// parse_post_request against the decoder it replaced
// (test_support::parse_post_request_reference), which built a JSON tree and
// parsed the body a second time for duplicate keys: for every body made
// here, both must return the same request or the same error text. The
// bodies are generated from fixed seeds (the same ones every run), built to
// reach every error the decoder has and the order between them: random
// structures, fields of every type, keys given twice at every depth, escapes
// and surrogates, bad UTF-8, strings long enough to arrive in parts, and
// every truncation of valid bodies. The post_request fuzzer goes on from
// here with inputs it finds by itself.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "base/testing/utf8_encode.h"
#include "model/post_request.h"
#include "model/testing/post_request_reference.h"

namespace feed {
namespace {

using test_support::append_utf8;

// A body in a failure message: printable ASCII as is, other bytes as \xNN.
std::string shown(std::string_view body) {
  std::string out;
  for (unsigned char c : body.substr(0, 300)) {
    if (c >= 0x20 && c < 0x7f && c != '\\') out += static_cast<char>(c);
    else out += fmt::format("\\x{:02X}", c);
  }
  if (body.size() > 300) out += fmt::format("... ({} bytes)", body.size());
  return out;
}

// The decision an error message stands for, without the numbers and keys
// it quotes; used to check that the bodies reach every decision.
std::string outcome_of(const result<post_request>& r) {
  if (r) return "accepted";
  static const char* const kinds[] = {
      "request body is not valid UTF-8",
      "request body is empty",
      "invalid JSON: a \\u escape",
      "invalid JSON: ",
      "request body must be a JSON object",
      "the JSON object has the key \"",
      "the JSON object has a key more than once",
      "missing field: user_id",
      "missing field: content",
      "user_id must be a string",
      "content must be a string",
      "user_id must not be empty",
      "user_id is longer than",
      "user_id must not contain control characters",
      "content is not valid UTF-8",
      "content must not be empty",
      "content must not contain control characters",
      "content must not be only whitespace",
      "user_id must not be only whitespace",
      "content is ",
  };
  for (const char* k : kinds)
    if (r.err().message.starts_with(k)) return k;
  return "unknown: " + r.err().message;
}

// Runs both decoders on each body and keeps what differed.
class differ {
 public:
  void check(std::string_view body, const post_limits& limits = {}) {
    ++checked_;
    const auto got = parse_post_request(body, limits);
    const auto want = test_support::parse_post_request_reference(body, limits);
    ++outcomes_[outcome_of(want)];
    std::string why;
    if (bool(got) != bool(want)) {
      why = fmt::format("new {} but reference {}", got ? "accepts" : "refuses: " + got.err().message,
                        want ? "accepts" : "refuses: " + want.err().message);
    } else if (want && (got->user_id != want->user_id || got->content != want->content)) {
      why = fmt::format("accepted differently: user_id '{}' vs '{}', content '{}' vs '{}'", shown(got->user_id),
                        shown(want->user_id), shown(got->content), shown(want->content));
    } else if (!want && (got.err().message != want.err().message || !got.err().is(errc::invalid_input))) {
      why = fmt::format("error '{}' vs reference '{}'", got.err().message, want.err().message);
    }
    if (why.empty()) return;
    if (++mismatches_ <= 10)
      ADD_FAILURE() << why << "\n  limits " << limits.max_content_code_points << "/" << limits.max_user_id_bytes
                    << ", body: " << shown(body);
  }

  // Every prefix of body, and body without each one of its bytes.
  void check_cuts(std::string_view body) {
    for (std::size_t n = 0; n <= body.size(); ++n) check(body.substr(0, n));
    for (std::size_t i = 0; i < body.size(); ++i)
      check(std::string(body.substr(0, i)) + std::string(body.substr(i + 1)));
  }

  void expect_no_mismatch() const { EXPECT_EQ(mismatches_, 0) << "of " << checked_ << " bodies"; }
  void expect_reached(std::initializer_list<std::string_view> kinds) const {
    for (auto k : kinds) EXPECT_GT(outcomes_.count(std::string(k)), 0u) << "no body reached: " << k;
  }
  const std::map<std::string, int>& outcomes() const { return outcomes_; }

 private:
  int checked_ = 0;
  int mismatches_ = 0;
  std::map<std::string, int> outcomes_;
};

// Random bodies, most of them shaped like posts so that they get past the
// syntax to the later checks, with every kind of noise at some rate.
class body_generator {
 public:
  explicit body_generator(std::uint64_t seed) : rng_(seed) {}

  int below(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }
  bool one_in(int n) { return below(n) == 0; }
  template <class T, std::size_t N>
  const T& pick(const T (&items)[N]) {
    return items[below(static_cast<int>(N))];
  }

  // A whole body: a post most of the time, with some prefix and suffix, and
  // sometimes bytes changed at random.
  std::string body() {
    std::string out;
    if (one_in(20)) out += "\xEF\xBB\xBF";
    if (one_in(80)) out += "\xEF\xBB\xBF";
    out += space();
    switch (below(20)) {
      case 0: out += value(0); break;
      case 1: out += pick({"", " ", "\t\r\n", "\xEF\xBB\xBF", "\f", "\xC2\xA0"}); break;
      default: out += post(); break;
    }
    out += space();
    if (one_in(25)) out += pick({"x", "}", "]", "{}", ",", "null", "/* c */", "// c\n", "\"", "\xFF"});
    if (one_in(100)) out += '\0';
    if (one_in(6)) mutate(out);
    return out;
  }

  // An object with the post's fields in some form and other members.
  std::string post() {
    std::vector<std::string> members;
    if (!one_in(12)) members.push_back(member(user_id_key(), user_id_value()));
    if (!one_in(12)) members.push_back(member(content_key(), content_value()));
    for (int extra = below(4) == 0 ? below(5) : 0; extra > 0; --extra) members.push_back(member(key(), value(1)));
    if (one_in(12)) members.push_back(member(user_id_key(), user_id_value()));
    if (one_in(12)) members.push_back(member(content_key(), content_value()));
    if (one_in(25)) members.push_back(member("", value(1)));
    if (one_in(25)) members.push_back(member("", value(1)));
    std::shuffle(members.begin(), members.end(), rng_);
    return object_of(members);
  }

  // Any JSON value (or a near miss) at the given depth.
  std::string value(int depth) {
    const int choice = below(depth > 9 ? 4 : 7);
    switch (choice) {
      case 0: return '"' + text(mixed) + '"';
      case 1: return number();
      case 2: return literal();
      case 3: return '"' + word() + '"';
      case 4:
      case 5: {
        std::vector<std::string> members;
        for (int n = below(4); n > 0; --n) members.push_back(member(key(), value(depth + 1)));
        if (one_in(4) && !members.empty()) members.push_back(members[below(static_cast<int>(members.size()))]);
        return object_of(members);
      }
      default: {
        std::string out = "[" + space();
        for (int n = below(4), i = 0; i < n; ++i) out += (i ? "," + space() : "") + value(depth + 1) + space();
        if (one_in(30)) out += ",";
        return out + "]";
      }
    }
  }

  enum text_kind { clean, mixed, hostile };

  // The characters of a JSON string, without its quotes. clean: valid and
  // printable; mixed: valid JSON with escapes, controls, invisibles and
  // surrogate escapes; hostile: also what JSON or UTF-8 refuse.
  std::string text(text_kind kind, int pieces = -1) {
    if (pieces < 0) pieces = one_in(40) ? 2000 + below(6000) : one_in(6) ? below(320) : below(24);
    std::string out;
    for (int i = 0; i < pieces; ++i) piece(out, kind);
    return out;
  }

  // 1..12 bytes a user id may hold.
  std::string word() {
    static constexpr std::string_view allowed = "abcxyzABCXYZ0189_.-";
    std::string out;
    for (int n = 1 + below(12); n > 0; --n) out += allowed[below(static_cast<int>(allowed.size()))];
    return out;
  }

  std::string space() {
    switch (below(30)) {
      case 0: return " ";
      case 1: return "\n  ";
      case 2: return "\t";
      case 3: return "\r\n";
      case 4: return one_in(10) ? pick({"\f", "\v", "\xC2\xA0", "/**/"}) : "  ";
      default: return "";
    }
  }

  void mutate(std::string& s) {
    for (int n = 1 + below(3); n > 0; --n) {
      const std::size_t at = s.empty() ? 0 : std::uniform_int_distribution<std::size_t>(0, s.size() - 1)(rng_);
      switch (below(6)) {
        case 0: s.resize(at); break;
        case 1: if (!s.empty()) s.erase(at, 1); break;
        case 2: s.insert(at, 1, static_cast<char>(below(256))); break;
        case 3: s.insert(at, 1, pick({'{', '}', '[', ']', ',', ':', '"', '\\', ' ', '0'})); break;
        case 4: if (!s.empty()) s[at] = static_cast<char>(below(256)); break;
        default: s.insert(at, s.substr(at, static_cast<std::size_t>(below(12)))); break;
      }
    }
  }

 private:
  std::string member(const std::string& k, const std::string& v) {
    return '"' + k + '"' + space() + (one_in(200) ? "" : ":") + space() + v;
  }

  std::string object_of(const std::vector<std::string>& members) {
    std::string out = "{" + space();
    for (std::size_t i = 0; i < members.size(); ++i) out += (i && !one_in(300) ? "," + space() : "") + members[i];
    if (one_in(40) && !members.empty()) out += ",";
    return out + space() + "}";
  }

  std::string user_id_key() {
    return one_in(8) ? pick({"user\\u005fid", "\\u0075ser_id", "user_i\\u0064", "User_id", "user_id ", "userid"})
                     : "user_id";
  }
  std::string content_key() {
    return one_in(8) ? pick({"cont\\u0065nt", "\\u0063ontent", "Content", "content\\u0000", "contents"}) : "content";
  }
  std::string key() {
    switch (below(12)) {
      case 0: return "";
      case 1: return user_id_key();
      case 2: return content_key();
      case 3: return text(mixed, 1 + below(3));
      case 4: return one_in(3) ? text(hostile, 1 + below(4)) : std::string(65 + below(3), 'k');
      case 5: return one_in(4) ? std::string(4000 + below(8000), 'K') : "\\udc00";
      default: return pick({"x", "k", "a", "b", "id", "x\\u0079"});
    }
  }

  std::string user_id_value() {
    switch (below(14)) {
      case 0: return wrong_type();
      case 1: return "\"\"";
      case 2: return '"' + std::string(63 + below(4), 'u') + '"';
      case 3: return '"' + text(mixed, 1 + below(4)) + '"';
      case 4: return "\"a\\u0062c\"";
      case 5: return '"' + word() + pick({" ", "/", "\xC3\xA9", "\\u0000", "\\n"}) + '"';
      default: return '"' + word() + '"';
    }
  }

  std::string content_value() {
    switch (below(14)) {
      case 0: return wrong_type();
      case 1: return "\"\"";
      case 2: return '"' + text(hostile) + '"';
      case 3:
        return std::string(1, '"') + pick({" ", "\\n", "\\t\\u200b", "\\u00a0\\u3000", "\\ufeff", "\\u2028"}) + '"';
      case 4: {
        std::string s;
        const int n = 279 + below(4);
        for (int i = 0; i < n; ++i) s += one_in(2) ? "\xF0\x9F\x99\x82" : "a";
        return '"' + s + '"';
      }
      case 5:
      case 6: return '"' + text(clean) + '"';
      default: return '"' + text(mixed) + '"';
    }
  }

  std::string wrong_type() {
    switch (below(4)) {
      case 0: return number();
      case 1: return literal();
      default: return value(1);
    }
  }

  std::string number() {
    static const char* const numbers[] = {
        "0", "-0", "7", "-1", "42", "1.5", "-2.25e-3", "1e10", "1E+2", "1e-400", "1e400", "0.0",
        "9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809",
        "18446744073709551615", "18446744073709551616", "123456789012345678901234567890",
        // Not numbers in JSON:
        "01", "1.", ".5", "-", "+1", "1e", "0x10", "NaN", "Infinity", "-Infinity", "1_000"};
    if (one_in(50)) return std::string(1 + below(2000), '9');
    return pick(numbers);
  }

  std::string literal() {
    if (one_in(10)) return pick({"tru", "nul", "True", "NULL", "falsey", "undefined"});
    return pick({"true", "false", "null"});
  }

  void piece(std::string& out, text_kind kind) {
    int choice = below(kind == clean ? 3 : kind == mixed ? 11 : 14);
    // Rare enough that many strings hold none: one lone surrogate, or a
    // syntax error anywhere next to any surrogate escape, decides the error.
    if ((choice == 5 || choice == 6 || choice == 7 || choice >= 11) && !one_in(16)) choice = 0;
    switch (choice) {
      case 0:
      case 1: out += pick({"a", "b", "Z", "0", " ", "#", "!", "'", "the ", "feed ", "_", "-", "."}); return;
      case 2:
        append_utf8(out, pick({U'\u00E9', U'\u00FC', U'\u20AC', U'\u4E2D', U'\U0001F642', U'\U0001F680'}));
        return;
      case 3: out += pick({"\\n", "\\t", "\\\"", "\\\\", "\\/", "\\b", "\\f", "\\r"}); return;
      case 4: {
        const unsigned c = bmp_not_surrogate();
        out += one_in(2) ? fmt::format("\\u{:04x}", c) : fmt::format("\\u{:04X}", c);
        return;
      }
      case 5:
        out += fmt::format("\\u{:04x}", pick({0x0000, 0x001b, 0x000b, 0x007f, 0x0085, 0x009b, 0x0009, 0x000a}));
        return;
      case 6: out += pick({"\\ud83d\\ude42", "\\uD83D\\uDE80", "\\udb40\\udc20"}); return;
      case 7:
        out += pick({"\\ud800", "\\udc00", "\\uDFFF", "\\ude42\\ud83d", "\\ud83d\\u0041", "\\ud83dx", "\\ud83d\\",
                     "\\uDBFF\\uDFFF", "\\ud800\\ud800"});
        return;
      case 8:
        append_utf8(out,
                    pick({U'\u200B', U'\u00A0', U'\u3000', U'\uFEFF', U'\u2028', U'\u0085', U'\u009B', U'\u3164'}));
        return;
      case 9: append_utf8(out, random_code_point()); return;
      case 10: out += std::string(1 + below(3), pick({'a', ' '})); return;
      case 11: out += pick({"\\x", "\\u12", "\\U0041", "\\'", "\\", "\\u00G0"}); return;
      case 12: out += pick({"\x01", "\x1f", "\t", "\n", "\r", "\x7f"}); return;
      default:
        out += pick({"\xFF", "\xC0\xAF", "\x80", "\xE2\x82", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xC3\x28"});
        return;
    }
  }

  unsigned bmp_not_surrogate() {
    unsigned c;
    do c = static_cast<unsigned>(below(0x10000));
    while (c >= 0xD800 && c <= 0xDFFF);
    return c;
  }

  char32_t random_code_point() {
    char32_t c;
    do c = static_cast<char32_t>(below(0x110000));
    while (c >= 0xD800 && c <= 0xDFFF);
    return c;
  }

  std::mt19937_64 rng_;
};

post_limits some_limits(body_generator& g) {
  if (!g.one_in(5)) return {};
  return {static_cast<std::size_t>(1 + g.below(300)), static_cast<std::size_t>(1 + g.below(70))};
}

TEST(PostRequestDifferential, RandomBodies) {
  differ d;
  body_generator g(20261130);
  for (int i = 0; i < 60000; ++i) d.check(g.body(), some_limits(g));
  d.expect_no_mismatch();
  // Bodies that stop short of a decision would prove nothing about it.
  // Not among them: "content is not valid UTF-8", which no body reaches
  // while the raw bytes are checked first and Boost.JSON (1.81) refuses
  // every lone surrogate escape.
  d.expect_reached({"accepted", "request body is not valid UTF-8", "request body is empty",
                    "invalid JSON: a \\u escape", "invalid JSON: ", "request body must be a JSON object",
                    "the JSON object has the key \"", "the JSON object has a key more than once",
                    "missing field: user_id", "missing field: content", "user_id must be a string",
                    "content must be a string", "user_id must not be empty", "user_id is longer than",
                    "user_id must not contain control characters", "user_id must not be only whitespace", "content must not be empty",
                    "content must not contain control characters", "content must not be only whitespace",
                    "content is "});
  for (const auto& [kind, n] : d.outcomes()) EXPECT_FALSE(kind.starts_with("unknown")) << kind;
}

TEST(PostRequestDifferential, EveryCutOfValidBodies) {
  differ d;
  std::vector<std::string> bodies = {
      R"({"user_id":"user_42","content":"the feed is fast café 🙂 deploy green #w17"})",
      "\xEF\xBB\xBF {\n  \"content\" : \"line\\nbreak \\u00e9 \\ud83d\\ude00\",\n  \"user_id\" : \"a.b-c_1\"\n}\n",
      R"({"user_id":"a","content":"b","extra":{"k":[1,2.5,-3e2,true,false,null,{"k":"v"}]}})",
      R"({"x":{"y":{"z":[[[["deep"]]]]}},"user_id":"u","content":"\u200bvisible\u00a0"})",
  };
  body_generator g(7);
  while (bodies.size() < 40) {
    std::string b = g.post();
    if (b.size() < 600 && parse_post_request(b)) bodies.push_back(b);
  }
  for (const auto& b : bodies) d.check_cuts(b);
  d.expect_no_mismatch();
  d.expect_reached({"accepted", "invalid JSON: ", "request body is empty", "missing field: user_id",
                    "missing field: content"});
}

TEST(PostRequestDifferential, EveryTypeForEachField) {
  differ d;
  const std::vector<std::string> values = {
      R"("ok")", R"("")", "null", "true", "false", "0", "-1", "1.5", "1e400", "18446744073709551616", "{}",
      R"({"user_id":"a","content":"b"})", "[]", R"(["ok"])", R"([[[[[[["deep"]]]]]]])", R"("\u0000")",
      R"("\ud800")", R"("a b")", "\"\xC3\xA9\"", R"("\u200b")"};
  for (const auto& u : values) {
    for (const auto& c : values) {
      d.check(R"({"user_id":)" + u + R"(,"content":)" + c + "}");
      d.check(R"({"content":)" + c + R"(,"user_id":)" + u + "}");
      d.check(R"({"content":)" + c + R"(,"other":)" + u + "}");
      d.check(R"({"user_id":)" + u + R"(,"content":)" + c + R"(,"user_id":)" + c + "}");
      d.check(R"({"":0,"":1,"user_id":)" + u + R"(,"content":)" + c + R"(,"content":)" + u + "}");
    }
    d.check(R"({"user_id":)" + u + "}");
    d.check(R"({"content":)" + u + "}");
    d.check(u);
    d.check("[" + u + "]");
  }
  d.expect_no_mismatch();
  d.expect_reached({"accepted", "missing field: user_id", "missing field: content", "user_id must be a string",
                    "content must be a string", "the JSON object has the key \"",
                    "request body must be a JSON object"});
}

// A key twice in an object at depth k of a chain n deep, with or without
// another repeated key elsewhere, which decides the key the error names.
TEST(PostRequestDifferential, DuplicateKeysAtEveryDepth) {
  differ d;
  const std::vector<std::string> keys = {"k", "a", "z", "user_id", "", "\\u006b", "\\udc00", std::string(70, 'x')};
  for (int n = 0; n <= 9; ++n) {
    for (int k = 0; k <= n; ++k) {
      for (const auto& first : keys) {
        for (const auto& second : keys) {
          std::string inner = "1";
          for (int level = n; level >= 0; --level) {
            std::string members = R"("v":)" + inner;
            if (level == k) members = '"' + first + R"(":0,)" + members + R"(,")" + first + R"(":1)";
            if (level == 0) members += R"(,"user_id":"u","content":"c")";
            if (level == n) members += R"(,")" + second + R"(":2,")" + second + R"(":3)";
            const bool in_array = level % 3 == 2;
            inner = in_array ? "[{" : "{";
            inner += members;
            inner += in_array ? "}]" : "}";
          }
          d.check(inner);
        }
      }
    }
  }
  d.expect_no_mismatch();
  // Every body repeats a key (the empty key too), so none is accepted.
  d.expect_reached({"the JSON object has the key \"", "the JSON object has a key more than once", "invalid JSON: "});
}

// Strings and keys far longer than the parser's buffers, so that they
// arrive in parts, with escapes and surrogates at the seams.
TEST(PostRequestDifferential, LongStrings) {
  differ d;
  for (std::size_t n : {4095u, 4096u, 4097u, 8191u, 8192u, 20000u, 100000u}) {
    const std::string plain(n, 'a');
    std::string escaped;
    while (escaped.size() < n) escaped += "\\u00e9";
    for (std::size_t at : {n / 2 - 1, n / 2, n / 2 + 1, n - 6, n - 1}) {
      for (std::string_view insert : {"\\ud800", "\\ud83d\\ude42", "\\udc00", "\\n", "\\u0000", "\xC3\xA9", "\x01"}) {
        std::string s = plain;
        s.insert(at, insert);
        std::string e = escaped;
        e.insert(at, insert);
        for (const auto& v : {s, e}) {
          d.check(R"({"user_id":"u","content":")" + v + "\"}");
          d.check(R"({"user_id":")" + v + R"(","content":"c"})");
          d.check(R"({")" + v + R"(":1,"user_id":"u","content":"c"})");
          d.check(R"({")" + v + R"(":1,")" + v + R"(":2,"user_id":"u","content":"c"})");
          d.check(R"({"user_id":"u","content":"c","x":[")" + v + "\"]}");
        }
      }
    }
    d.check(R"({"user_id":"u","content":"c","n":)" + std::string(n, '7') + "}");
    std::string emoji;
    for (std::size_t i = 0; i < n / 4; ++i) emoji += "\xF0\x9F\x99\x82";
    d.check(R"({"user_id":"u","content":")" + emoji + "\"}", post_limits{n, 64});
  }
  std::string wide = "{";
  for (int i = 0; i < 5000; ++i) wide += fmt::format(R"("k{}":{},)", i * 7919 % 5000, i);
  d.check(wide + R"("user_id":"u","content":"c"})");
  d.check(wide + R"("k4999":0,"user_id":"u","content":"c"})");
  d.expect_no_mismatch();
  d.expect_reached({"accepted", "invalid JSON: a \\u escape", "content must not contain control characters",
                    "the JSON object has a key more than once", "the JSON object has the key \"",
                    "user_id is longer than"});
}

// Bodies picked by hand for the order between errors and for what the
// reference decided in corners.
TEST(PostRequestDifferential, ChosenCases) {
  differ d;
  const std::vector<std::string> bodies = {
      "", " \t\r\n", "\xEF\xBB\xBF", "\xEF\xBB\xBF\xEF\xBB\xBF{}", "\xEF\xBB\xBF \xFF",
      R"({"user_id":"a","content":"b"} x)", R"({"user_id":"a","content":"b"}{})",
      R"({"user_id":"a","content":"b",})", R"({"user_id":"a",/*c*/"content":"b"})",
      R"({"user_id":"a","content":"b"}//)", R"([{"k":1,"k":2}])", R"({"k":1,"k":2})",
      R"({"user_id":"a","user_id":"b","content":7})", R"({"user_id":7,"user_id":"b","content":"c"})",
      R"({"user_id":"a","content":"b","x":{"k":1,"k":2},"z":0,"z":1})",
      R"({"z":0,"z":1,"x":{"b":1,"b":2,"a":1,"a":2}})", R"({"":0,"":1,"a":0,"a":1,"user_id":"u","content":"c"})",
      R"({"x":{"":0,"":1},"a":0,"a":1,"user_id":"u","content":"c"})",
      R"({"":0,"":1,"user_id":"a","user_id":"b","content":"c"})",
      R"({"":0,"":1,"content":"c","user_id":"a","content":null})",
      R"({"user_id":"a","content":"\ud800","x":"\ud800"})", R"({"user_id":"a","content":"b","x":"\ud800"})",
      R"({"user_id":"a","content":"b","x":"\udc00"})", R"({"user_id":"a","content":"b" "\uD800"})",
      R"({"user_id":"a","content":"b","\udc00":1,"\udc00":2})", R"({"user\u005fid":"a","content":"b"})",
      R"({"user_id":"a","content":"b","x":[[[[[[[1]]]]]]]})", R"({"user_id":"a","content":"b","x":[[[[[[[[1]]]]]]]]})",
      R"({"user_id":"a","content":"b","x":1e999999999999})", R"({"user_id":"a","content":"b","x":-})",
      R"({"user_id":"a","content":"x\u0000y"})", R"({"user_id":"a","content":"\u00a0"})", "[]", "null", "\"hi\"",
      std::string("{\"user_id\":\"a\",\"content\":\"b\"}\0", 30),
      std::string("{\"user_id\":\"a\0\",\"content\":\"b\"}", 30),
      R"({"user_id":"a","content":"b"})",
  };
  for (const auto& b : bodies) {
    d.check(b);
    d.check(b, post_limits{1, 1});
  }
  d.expect_no_mismatch();
}

}  // namespace
}  // namespace feed
