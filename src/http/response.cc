#include "http/response.h"

#include <boost/beast/http/field.hpp>
#include <boost/json/serialize.hpp>

namespace feed::http {
namespace {

// Length of the UTF-8 sequence at the start of s (non-empty) if it is
// well-formed, else the length of its longest well-formed prefix (at least 1)
// and valid = false. Byte ranges from Unicode Table 3-7.
struct sequence {
  std::size_t length;
  bool valid;
};

sequence next_sequence(std::string_view s) {
  const auto lead = static_cast<unsigned char>(s[0]);
  if (lead < 0x80) return {1, true};
  std::size_t trail = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // range of the first trail byte
  if (lead >= 0xC2 && lead <= 0xDF) trail = 1;
  else if (lead == 0xE0) trail = 2, lo = 0xA0;
  else if (lead == 0xED) trail = 2, hi = 0x9F;
  else if (lead >= 0xE1 && lead <= 0xEF) trail = 2;
  else if (lead == 0xF0) trail = 3, lo = 0x90;
  else if (lead >= 0xF1 && lead <= 0xF3) trail = 3;
  else if (lead == 0xF4) trail = 3, hi = 0x8F;
  else return {1, false};
  for (std::size_t i = 1; i <= trail; ++i) {
    if (i >= s.size()) return {i, false};
    const auto b = static_cast<unsigned char>(s[i]);
    if (b < lo || b > hi) return {i, false};
    lo = 0x80, hi = 0xBF;
  }
  return {trail + 1, true};
}

}  // namespace

std::string to_valid_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  while (!s.empty()) {
    const auto [length, valid] = next_sequence(s);
    if (valid) out.append(s.substr(0, length));
    else out.append("\xEF\xBF\xBD");
    s.remove_prefix(length);
  }
  return out;
}

response json_body_response(const request& req, status s, std::string body) {
  response res{s, req.version(), std::string(), req.get_allocator()};
  res.set(beast::http::field::content_type, "application/json");
  res.set(beast::http::field::server, "feed-api");
  // With the OPTIONS preflight (router.cc), lets a page on any origin read
  // the answer, as it can read the feed's stream.
  res.set(beast::http::field::access_control_allow_origin, "*");
  res.body() = std::move(body);
  return res;
}

response event_stream_head(const request& req) {
  response res{status::ok, req.version(), std::string(), req.get_allocator()};
  res.set(beast::http::field::content_type, "text/event-stream");
  res.set(beast::http::field::cache_control, "no-cache");
  res.set(beast::http::field::access_control_allow_origin, "*");
  res.set("X-Accel-Buffering", "no");  // nginx: pass each event on at once
  res.set(beast::http::field::server, "feed-api");
  return res;
}

response json_response(const request& req, status s, const boost::json::value& body) {
  std::string text = boost::json::serialize(body);
  text.push_back('\n');
  return json_body_response(req, s, std::move(text));
}

response error_response(const request& req, status s, std::string_view message) {
  return json_response(req, s, boost::json::object{{"error", to_valid_utf8(message)}});
}

void strip_body_for_head(response& res) {
  // 204 and 304 are never framed (RFC 9110 §8.6), and an event stream has
  // no length: it ends when the connection closes.
  const bool framed = res.result() != status::no_content && res.result() != status::not_modified &&
                      res[beast::http::field::content_type] != "text/event-stream";
  if (framed) res.content_length(res.body().size());
  res.body().clear();
}

}  // namespace feed::http
