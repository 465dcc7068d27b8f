#include "http/request_checks.h"

#include <algorithm>
#include <utility>
#include <vector>

#include <boost/beast/http/error.hpp>
#include <boost/beast/http/rfc7230.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "base/ascii.h"

namespace feed::http {
namespace {

namespace bhttp = beast::http;
using field = bhttp::field;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = ascii_lower(c);
  return out;
}

// The fields the checks count, found in one walk over the list: one
// lookup per field in the name-ordered set would cost more than that walk
// on a head of a few fields.
struct field_counts {
  std::size_t host = 0;
  std::size_t content_type = 0;
  std::size_t content_length = 0;
  std::size_t transfer_encoding = 0;
  std::size_t last_event_id = 0;
  std::size_t expect = 0;
  std::string_view host_value;    // the first Host's
  std::string_view expect_value;  // the first Expect's
  // The Connection options, from every Connection line: RFC 9110 §5.3
  // reads several lines as one list, so a "close" on a second line counts.
  bool connection_close = false;
  bool connection_keep_alive = false;
};

field_counts count_fields(const bhttp::request_header<fields>& head) {
  field_counts n;
  for (const auto& f : head) {
    switch (f.name()) {
      case field::host:
        if (n.host++ == 0) n.host_value = f.value();
        break;
      case field::content_type: ++n.content_type; break;
      case field::content_length: ++n.content_length; break;
      case field::transfer_encoding: ++n.transfer_encoding; break;
      case field::expect:
        if (n.expect++ == 0) n.expect_value = f.value();
        break;
      case field::connection:
        for (const auto option : bhttp::token_list(f.value())) {
          if (ascii_iequals(option, "close")) n.connection_close = true;
          else if (ascii_iequals(option, "keep-alive")) n.connection_keep_alive = true;
        }
        break;
      case field::unknown:  // Beast has no enumerator for Last-Event-ID
        if (ascii_iequals(f.name_string(), "Last-Event-ID")) ++n.last_event_id;
        break;
      default: break;
    }
  }
  return n;
}

// Every coding of every Transfer-Encoding line, in order, lower case.
std::vector<std::string> transfer_codings(const bhttp::request_header<fields>& head) {
  std::vector<std::string> codings;
  const auto [first, last] = head.equal_range(field::transfer_encoding);
  for (auto it = first; it != last; ++it) {
    std::string_view rest = it->value();
    while (!rest.empty()) {
      const auto comma = rest.find(',');
      if (auto coding = trim_ows(rest.substr(0, comma)); !coding.empty()) codings.push_back(lower(coding));
      rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    }
  }
  return codings;
}

std::optional<rejection> bad(status code, std::string message) { return rejection{code, std::move(message)}; }

// RFC 9112 §6.1 and §6.3: a body is framed by chunked or by Content-Length,
// never by both, and a framing we cannot read is an error, not "no body":
// reading on would take the body for the next request.
std::optional<rejection> check_framing(const bhttp::request_header<fields>& head, const field_counts& n) {
  const std::size_t lines = n.transfer_encoding;
  if (lines == 0) return std::nullopt;
  if (head.version() < 11)
    return bad(status::bad_request, "Transfer-Encoding is not allowed in an HTTP/1.0 request");
  if (n.content_length != 0)
    return bad(status::bad_request, "a request must not have both Transfer-Encoding and Content-Length");
  const auto codings = transfer_codings(head);
  if (codings.empty() || codings.back() != "chunked")
    return bad(status::bad_request,
               fmt::format("Transfer-Encoding must end with chunked, got '{}'", fmt::join(codings, ", ")));
  if (std::count(codings.begin(), codings.end(), "chunked") > 1)
    return bad(status::bad_request, "Transfer-Encoding applies chunked more than once");
  if (codings.size() > 1)
    return bad(status::not_implemented,
               fmt::format("Transfer-Encoding '{}' is not supported; send chunked alone", codings.front()));
  // The parser frames the body only for this exact spelling; accepting any
  // other would let it and us disagree about where the body ends.
  if (lines > 1 || !ascii_iequals(trim_ows(head[field::transfer_encoding]), "chunked"))
    return bad(status::bad_request, "Transfer-Encoding must be exactly 'chunked'");
  return std::nullopt;
}

// RFC 9112 §3.2: exactly one Host in HTTP/1.1, at most one in HTTP/1.0.
std::optional<rejection> check_host(const bhttp::request_header<fields>& head, const field_counts& n) {
  const std::size_t hosts = n.host;
  if (hosts > 1) return bad(status::bad_request, "a request must have one Host header, not several");
  if (hosts == 0 && head.version() >= 11) return bad(status::bad_request, "an HTTP/1.1 request needs a Host header");
  if (hosts == 1 && !valid_host(n.host_value))
    return bad(status::bad_request, fmt::format("invalid Host header '{}'", n.host_value));
  return std::nullopt;
}

std::optional<rejection> check_target(const bhttp::request_header<fields>& head, accepted_head& accepted) {
  const std::string_view target = head.target();
  auto parsed = request_target::parse(target);
  if (!parsed) return bad(status::bad_request, "request target must be a path and query, or an absolute http(s) URL");
  if (target == "*" && head.method() != verb::options)
    return bad(status::bad_request, "the request target * is only for OPTIONS");
  accepted.target = std::move(*parsed);
  return std::nullopt;
}

// Headers that name one value: two copies would let us and a proxy in front
// each pick a different one (the parser keeps the first), as with Host.
std::optional<rejection> check_singletons(const field_counts& n) {
  for (const auto& [f, lines] : {std::pair{field::content_type, n.content_type},
                                 std::pair{field::content_length, n.content_length}})
    if (lines > 1)
      return bad(status::bad_request, fmt::format("a request must not repeat the {} header", bhttp::to_string(f)));
  if (n.last_event_id > 1) return bad(status::bad_request, "a request must not repeat Last-Event-ID");
  return std::nullopt;
}

}  // namespace

std::optional<rejection> check_request_head(const beast::http::request_header<fields>& head) {
  accepted_head accepted;
  return check_request_head(head, accepted);
}

std::optional<rejection> check_request_head(const beast::http::request_header<fields>& head,
                                            accepted_head& accepted) {
  const field_counts n = count_fields(head);
  if (auto r = check_framing(head, n)) return r;
  if (auto r = check_host(head, n)) return r;
  if (auto r = check_singletons(n)) return r;
  if (auto r = check_target(head, accepted)) return r;
  accepted.transfer_encoding = n.transfer_encoding != 0;
  // RFC 9110 §10.1.1: an HTTP/1.0 client does not know 100 Continue.
  accepted.expect_continue = head.version() >= 11 && ascii_iequals(n.expect_value, "100-continue");
  // RFC 9112 §9.3: HTTP/1.1 persists unless "close"; HTTP/1.0 only with "keep-alive".
  accepted.keep_alive = !n.connection_close && (head.version() >= 11 || n.connection_keep_alive);
  return std::nullopt;
}

rejection body_too_large(std::size_t max_body_bytes) {
  return {status::payload_too_large, fmt::format("request body exceeds {} bytes", max_body_bytes)};
}

rejection unreadable_request(const boost::system::error_code& ec, std::size_t max_body_bytes,
                             std::size_t max_header_bytes) {
  if (ec == bhttp::error::body_limit) return body_too_large(max_body_bytes);
  // The connection's read buffer is full with a chunk-size line or a
  // trailer not yet whole (server.cc).
  if (ec == bhttp::error::buffer_overflow)
    return {status::payload_too_large, "a chunk-size line or trailer of the request is too long"};
  if (ec == bhttp::error::header_limit)
    return {status::request_header_fields_too_large, fmt::format("request header exceeds {} bytes", max_header_bytes)};
  return {status::bad_request, fmt::format("malformed HTTP request: {}", ec.message())};
}

}  // namespace feed::http
