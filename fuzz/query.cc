// Query-string and Last-Event-ID parsing (src/http/query.h), as the feed and
// list handlers use them.
//
// Input: any bytes, taken both as a Last-Event-ID header value and as the
// query string of a request target. Integers that parse must be in range and
// be plain decimal text; a value query_param finds must be the first
// parameter of that name; every error must make a valid UTF-8 JSON body.
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include <boost/url/parse.hpp>

#include "error_body.h"
#include "fuzz_check.h"
#include "http/query.h"

namespace {

constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();

void check_integer(std::string_view text, std::string_view what, std::int64_t min, std::int64_t max) {
  auto r = feed::http::parse_integer(text, what, min, max);
  if (!r) {
    FUZZ_CHECK(!r.err().message.empty());
    check_error_body(r.err().message);
    return;
  }
  FUZZ_CHECK(*r >= min && *r <= max);
  // Only plain decimal: no sign other than '-', no spaces, no hex, no suffix.
  std::string_view digits = text;
  if (digits.starts_with('-')) digits.remove_prefix(1);
  FUZZ_CHECK(!digits.empty());
  for (char c : digits) FUZZ_CHECK(c >= '0' && c <= '9');
  // The value is the text's: strip leading zeros and compare with to_string.
  const auto nz = digits.find_first_not_of('0');
  const std::string_view sig = nz == std::string_view::npos ? std::string_view("0") : digits.substr(nz);
  const std::string printed = std::to_string(*r);
  if (*r < 0) FUZZ_CHECK(text.starts_with('-') && printed.substr(1) == sig);
  else FUZZ_CHECK(printed == sig);
}

void check_target(std::string_view target) {
  auto url = boost::urls::parse_origin_form(target);
  if (!url) return;
  for (std::string_view name : {"since", "history", "user_id", "limit", "before"}) {
    const auto value = feed::http::query_param(*url, name);
    std::optional<std::string> first;
    for (auto p : url->params()) {
      if (p.key == name) {
        first = std::string(p.value);
        break;
      }
    }
    FUZZ_CHECK(value == first);
    if (!value) continue;
    // The ranges the handlers use (feed.cc, list_messages.cc).
    if (name == "since") check_integer(*value, name, 0, kMax);
    if (name == "history" && *value != "all") check_integer(*value, name, 0, 1'000'000);
    if (name == "limit") check_integer(*value, name, 1, 1000);
    if (name == "before") check_integer(*value, name, 1, kMax);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);

  check_integer(in, "Last-Event-ID", 0, kMax);
  check_integer(in, "n", std::numeric_limits<std::int64_t>::min(), kMax);
  check_integer(in, "n", -static_cast<std::int64_t>(size), static_cast<std::int64_t>(size) * 1000);

  std::string target = "/api/feed?";
  target.append(in);
  check_target(target);
  check_target(in);
  return 0;
}
