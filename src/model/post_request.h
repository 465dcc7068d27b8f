// Decoding and validation of a POST /api/messages body.
//
// A pure function: bytes in, either a post_request or an errc::invalid_input
// error whose message is shown to the client as {"error": "..."}.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "base/result.h"

namespace feed {

struct post_limits {
  std::size_t max_content_code_points = 280;  // the reference's tweet length
  std::size_t max_user_id_bytes = 64;
};

struct post_request {
  std::string user_id;
  std::string content;
};

result<post_request> parse_post_request(std::string_view body, const post_limits& limits = {});

// A user id is 1..max bytes of UTF-8 text without control characters (tab
// and line feed included); returns what is wrong or "".
std::string check_user_id(std::string_view user_id, std::size_t max_bytes);

// A new post's author: check_user_id, and not blank to a reader (only
// spaces or invisible characters): the id names the author on every page,
// where a blank one cannot be read or clicked. Filters still take any id
// check_user_id takes, as records from other producers may hold one.
std::string check_author(std::string_view user_id, std::size_t max_bytes);

// Content is 1..max code points of valid UTF-8, without forbidden controls
// (model/utf8.h), not blank to a reader; returns what is wrong or "".
std::string check_content(std::string_view content, std::size_t max_code_points);

}  // namespace feed
