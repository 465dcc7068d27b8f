// The Content-Type check of POST /api/messages (src/model/media_type.h and
// the refusals of src/model/accepted_message.cc).
//
// Input: any bytes, taken as a Content-Type value. charset_of must agree
// with a reference reader written as a character-by-character state
// machine over RFC 9110 §5.6.6's grammar and our stricter rules for
// charset (a different shape from the code's search for delimiters, so
// that the two share no slip); a charset it finds must read back the same
// once written as a quoted-string; every refusal must make a valid UTF-8
// JSON error body.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "error_body.h"
#include "fuzz_check.h"
#include "model/accepted_message.h"
#include "model/media_type.h"

namespace {

struct reading {
  bool ok = true;
  std::string charset;
};

bool ows(char c) { return c == ' ' || c == '\t'; }

std::string trimmed(const std::string& s) {
  std::size_t b = 0, e = s.size();
  while (b < e && ows(s[b])) ++b;
  while (e > b && ows(s[e - 1])) --e;
  return s.substr(b, e - b);
}

// Its own letter-case fold, so that it shares no helper with the code it checks.
bool is_charset(const std::string& name) {
  std::string folded = trimmed(name);
  for (char& c : folded)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + ('a' - 'A'));
  return folded == "charset";
}

reading reference(std::string_view v) {
  enum { type, name, before_value, token, quoted, escaped, after_quoted } state = type;
  std::string n, value;
  std::optional<std::string> charset;
  bool failed = false;
  auto finish_value = [&](std::string val) {
    if (!is_charset(n)) return;
    if (charset || val.empty()) failed = true;
    charset = std::move(val);
  };
  auto name_alone = [&] {  // a ';' or the end while still reading a name
    if (is_charset(n)) failed = true;
  };
  for (char c : v) {
    if (failed) break;
    switch (state) {
      case type:
        if (c == ';') state = name, n.clear();
        break;
      case name:
        if (c == ';') name_alone(), n.clear();
        else if (c == '=') state = before_value;
        else n.push_back(c);
        break;
      case before_value:
        if (ows(c)) break;
        value.clear();
        if (c == '"') state = quoted;
        else if (c == ';') finish_value(""), state = name, n.clear();
        else value.push_back(c), state = token;
        break;
      case token:
        if (c == ';') finish_value(trimmed(value)), state = name, n.clear();
        else value.push_back(c);
        break;
      case quoted:
        if (c == '"') finish_value(value), state = after_quoted;
        else if (c == '\\') state = escaped;
        else value.push_back(c);
        break;
      case escaped:
        value.push_back(c), state = quoted;
        break;
      case after_quoted:
        if (c == ';') state = name, n.clear();
        else if (!ows(c)) failed = true;
        break;
    }
  }
  if (!failed) {
    if (state == name) name_alone();
    else if (state == before_value) finish_value("");
    else if (state == token) finish_value(trimmed(value));
    else if (state == quoted || state == escaped) failed = true;
  }
  if (failed) return {false, {}};
  return {true, charset.value_or(std::string())};
}

std::string quoted_string(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out + "\"";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view ct(reinterpret_cast<const char*>(data), size);
  const auto got = feed::charset_of(ct);
  const auto want = reference(ct);
  FUZZ_CHECK(got.ok() == want.ok);
  if (got) {
    FUZZ_CHECK(*got == want.charset);
    if (!got->empty()) {  // "" is no charset; an empty one named is refused
      auto again = feed::charset_of("application/json; charset=" + quoted_string(*got));
      FUZZ_CHECK(again && *again == *got);
    }
  } else {
    check_error_body(got.err().message);
  }

  feed::post_input in;
  in.content_type = ct;
  in.body = R"({"user_id":"fuzz","content":"x"})";
  const auto decision = feed::build_accepted_message(in, {}, feed::timestamp{}, [] { return std::string("id"); });
  if (const auto* no = std::get_if<feed::post_refusal>(&decision)) check_error_body(no->message);
  return 0;
}
