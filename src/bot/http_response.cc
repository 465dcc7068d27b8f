#include "bot/http_response.h"

#include <charconv>

#include "base/ascii.h"

namespace feed::bot {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

bool contains_token(std::string_view list, std::string_view token) {
  while (!list.empty()) {
    const auto comma = list.find(',');
    if (ascii_iequals(trim(list.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

}  // namespace

head_parse parse_response_head(std::string_view buf, response_head& out) {
  const auto end = buf.find("\r\n\r\n");
  if (end == std::string_view::npos) return buf.size() > kMaxResponseHead ? head_parse::bad : head_parse::incomplete;
  out = response_head{};
  out.head_bytes = end + 4;
  std::string_view head = buf.substr(0, end + 2);

  auto eol = head.find("\r\n");
  const std::string_view status_line = head.substr(0, eol);
  head.remove_prefix(eol + 2);
  // "HTTP/1.1 202 Accepted"
  if (status_line.size() < 12 || status_line.substr(0, 5) != "HTTP/") return head_parse::bad;
  const auto sp = status_line.find(' ');
  if (sp == std::string_view::npos || sp + 4 > status_line.size()) return head_parse::bad;
  int status = 0;
  auto [p, ec] = std::from_chars(status_line.data() + sp + 1, status_line.data() + sp + 4, status);
  if (ec != std::errc{} || status < 100 || status > 999) return head_parse::bad;
  out.status = status;
  if (status_line.substr(0, 8) == "HTTP/1.0") out.close = true;

  while (!head.empty()) {
    eol = head.find("\r\n");
    const std::string_view line = head.substr(0, eol);
    head.remove_prefix(eol + 2);
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) return head_parse::bad;
    const std::string_view name = line.substr(0, colon);
    const std::string_view value = trim(line.substr(colon + 1));
    if (ascii_iequals(name, "content-length")) {
      std::uint64_t n = 0;
      auto [q, e] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (e != std::errc{} || q != value.data() + value.size()) return head_parse::bad;
      out.content_length = n;
    } else if (ascii_iequals(name, "transfer-encoding")) {
      out.chunked = contains_token(value, "chunked");
    } else if (ascii_iequals(name, "connection")) {
      if (contains_token(value, "close")) out.close = true;
      if (contains_token(value, "keep-alive")) out.close = false;
    } else if (ascii_iequals(name, "content-type")) {
      out.event_stream = ascii_iequals(trim(value.substr(0, value.find(';'))), "text/event-stream");
    } else if (ascii_iequals(name, "retry-after")) {
      double s = 0;
      auto [q, e] = std::from_chars(value.data(), value.data() + value.size(), s);
      out.retry_after_s = (e == std::errc{} && s >= 0) ? s : 1.0;
    }
  }
  if (out.chunked) out.content_length.reset();
  return head_parse::ok;
}

}  // namespace feed::bot
