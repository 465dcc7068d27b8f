// POST /api/messages body decoding and validation (feed::parse_post_request).
//
// Input: the raw body. Whatever it is, parsing must not crash, and what it
// accepts must be what the API promises to store: a user_id of 1..64 bytes
// of UTF-8 without control characters and content of 1..280 code points of valid UTF-8 without
// forbidden controls. An accepted request must also survive a round trip
// through the JSON the bot and the tests send.
//
// parse_post_request reads the JSON in one pass; the decoder it replaced
// (a tree, then a second parse for duplicate keys) is kept as
// test_support::parse_post_request_reference. For every input, and every
// limits tried on it, both must accept the same request or refuse with the
// same error text.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <boost/json.hpp>

#include "fuzz_check.h"
#include "model/post_request.h"
#include "model/testing/post_request_reference.h"
#include "model/utf8.h"

namespace {

feed::result<feed::post_request> parse_checked(std::string_view body, const feed::post_limits& limits) {
  auto got = feed::parse_post_request(body, limits);
  const auto want = feed::test_support::parse_post_request_reference(body, limits);
  FUZZ_CHECK(bool(got) == bool(want));
  if (want) {
    FUZZ_CHECK(got->user_id == want->user_id && got->content == want->content);
  } else {
    FUZZ_CHECK(got.err().message == want.err().message);
    FUZZ_CHECK(got.err().code == want.err().code);
  }
  return got;
}

void check_accepted(const feed::post_request& r, const feed::post_limits& limits) {
  FUZZ_CHECK(feed::check_user_id(r.user_id, limits.max_user_id_bytes).empty());
  FUZZ_CHECK(!r.user_id.empty() && r.user_id.size() <= limits.max_user_id_bytes);
  const auto points = feed::utf8_code_points(r.content);
  FUZZ_CHECK(points.has_value());
  FUZZ_CHECK(*points >= 1 && *points <= limits.max_content_code_points);
  FUZZ_CHECK(!feed::first_forbidden_control(r.content).has_value());
  FUZZ_CHECK(!feed::is_blank_to_reader(r.content));

  const std::string again =
      boost::json::serialize(boost::json::object{{"user_id", r.user_id}, {"content", r.content}});
  auto reparsed = parse_checked(again, limits);
  FUZZ_CHECK(bool(reparsed));
  FUZZ_CHECK(reparsed->user_id == r.user_id && reparsed->content == r.content);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);

  const feed::post_limits defaults;
  auto r = parse_checked(body, defaults);
  if (r) {
    check_accepted(*r, defaults);
  } else {
    FUZZ_CHECK(!r.err().message.empty());
    // The message is shown to the client inside JSON.
    FUZZ_CHECK(feed::utf8_code_points(r.err().message).has_value());
  }

  // Tighter limits, as an operator could configure, must hold just the same.
  const feed::post_limits tight{size % 7 + 1, size % 5 + 1};
  if (auto t = parse_checked(body, tight)) {
    check_accepted(*t, tight);
    FUZZ_CHECK(bool(r) && r->user_id == t->user_id && r->content == t->content);
  }
  return 0;
}
