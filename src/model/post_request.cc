#include "model/post_request.h"

#include <boost/json.hpp>
#include <fmt/format.h>

#include "model/utf8.h"

namespace feed {
namespace {

// Boost.JSON reports a lone high surrogate escape as a plain syntax error;
// this lets the error name the real problem.
bool has_surrogate_escape(std::string_view body) {
  for (auto p = body.find("\\u"); p != std::string_view::npos; p = body.find("\\u", p + 2)) {
    if (p + 3 < body.size() && (body[p + 2] == 'd' || body[p + 2] == 'D') &&
        std::string_view("89abcdefABCDEF").find(body[p + 3]) != std::string_view::npos)
      return true;
  }
  return false;
}

}  // namespace

std::string check_user_id(std::string_view user_id, std::size_t max_bytes) {
  if (user_id.empty()) return "user_id must not be empty";
  if (user_id.size() > max_bytes) return fmt::format("user_id is longer than {} bytes", max_bytes);
  for (char c : user_id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                    c == '.' || c == '-';
    if (!ok) return "user_id may contain only letters, digits, '_', '.' and '-'";
  }
  return {};
}

result<post_request> parse_post_request(std::string_view body, const post_limits& limits) {
  // Check the raw bytes first: Boost.JSON also rejects bad UTF-8, but with a
  // generic syntax error, and clients deserve to be told what is wrong.
  if (!utf8_code_points(body)) return error(errc::invalid_input, "request body is not valid UTF-8");

  boost::json::parse_options opts;
  opts.max_depth = 8;
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(body, ec, {}, opts);
  if (ec) {
    if (body.find_first_not_of(" \t\r\n") == std::string_view::npos)
      return error(errc::invalid_input, "request body is empty; expected a JSON object");
    if (ec == boost::json::error::illegal_leading_surrogate || ec == boost::json::error::illegal_trailing_surrogate ||
        has_surrogate_escape(body))
      return error(errc::invalid_input,
                   "invalid JSON: a \\u escape encodes a lone UTF-16 surrogate, which is not valid UTF-8");
    return error(errc::invalid_input, fmt::format("invalid JSON: {}", ec.message()));
  }
  const auto* obj = v.if_object();
  if (!obj) return error(errc::invalid_input, "request body must be a JSON object with user_id and content");

  auto string_field = [&](const char* name, std::string& out) -> std::string {
    const auto* f = obj->if_contains(name);
    if (!f || f->is_null()) return fmt::format("missing field: {}", name);
    const auto* s = f->if_string();
    if (!s) return fmt::format("{} must be a string", name);
    out.assign(s->data(), s->size());
    return {};
  };

  post_request req;
  if (auto e = string_field("user_id", req.user_id); !e.empty()) return error(errc::invalid_input, e);
  if (auto e = string_field("content", req.content); !e.empty()) return error(errc::invalid_input, e);

  // Escapes such as "\ud800" decode to bytes that are not UTF-8, so the
  // decoded strings are checked again.
  if (auto e = check_user_id(req.user_id, limits.max_user_id_bytes); !e.empty()) return error(errc::invalid_input, e);
  const auto points = utf8_code_points(req.content);
  if (!points) return error(errc::invalid_input, "content is not valid UTF-8 (lone surrogate escape?)");
  if (*points == 0) return error(errc::invalid_input, "content must not be empty");
  if (req.content.find_first_not_of(" \t\r\n") == std::string::npos)
    return error(errc::invalid_input, "content must not be only whitespace");
  if (*points > limits.max_content_code_points)
    return error(errc::invalid_input, fmt::format("content is {} characters; the limit is {}", *points,
                                                  limits.max_content_code_points));
  return req;
}

}  // namespace feed
