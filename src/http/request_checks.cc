#include "http/request_checks.h"

#include <algorithm>
#include <cctype>
#include <vector>

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/url/parse.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

namespace feed::http {
namespace {

namespace bhttp = beast::http;
using field = bhttp::field;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::size_t count_lines(const bhttp::request_header<fields>& head, field f) {
  const auto [first, last] = head.equal_range(f);
  return static_cast<std::size_t>(std::distance(first, last));
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
std::optional<rejection> check_framing(const bhttp::request_header<fields>& head) {
  const std::size_t lines = count_lines(head, field::transfer_encoding);
  if (lines == 0) return std::nullopt;
  if (head.version() < 11)
    return bad(status::bad_request, "Transfer-Encoding is not allowed in an HTTP/1.0 request");
  if (head.count(field::content_length) != 0)
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
  if (lines > 1 || !beast::iequals(trim_ows(head[field::transfer_encoding]), "chunked"))
    return bad(status::bad_request, "Transfer-Encoding must be exactly 'chunked'");
  return std::nullopt;
}

bool valid_host(std::string_view value) {
  if (value.empty()) return true;  // allowed when the target names no authority
  auto authority = boost::urls::parse_authority(value);
  return authority && !authority->has_userinfo();
}

// RFC 9112 §3.2: exactly one Host in HTTP/1.1, at most one in HTTP/1.0.
std::optional<rejection> check_host(const bhttp::request_header<fields>& head) {
  const std::size_t hosts = count_lines(head, field::host);
  if (hosts > 1) return bad(status::bad_request, "a request must have one Host header, not several");
  if (hosts == 0 && head.version() >= 11) return bad(status::bad_request, "an HTTP/1.1 request needs a Host header");
  if (hosts == 1 && !valid_host(head[field::host]))
    return bad(status::bad_request, fmt::format("invalid Host header '{}'", std::string_view(head[field::host])));
  return std::nullopt;
}

std::optional<rejection> check_target(const bhttp::request_header<fields>& head) {
  const std::string_view target = head.target();
  if (!parse_request_target(target))
    return bad(status::bad_request, "request target must be a path and query, or an absolute http(s) URL");
  if (target == "*" && head.method() != verb::options)
    return bad(status::bad_request, "the request target * is only for OPTIONS");
  return std::nullopt;
}

// Headers that name one value: two copies would let us and a proxy in front
// each pick a different one (the parser keeps the first), as with Host.
std::optional<rejection> check_singletons(const bhttp::request_header<fields>& head) {
  for (const auto f : {field::content_type, field::content_length})
    if (count_lines(head, f) > 1)
      return bad(status::bad_request, fmt::format("a request must not repeat the {} header", bhttp::to_string(f)));
  if (head.count("Last-Event-ID") > 1) return bad(status::bad_request, "a request must not repeat Last-Event-ID");
  return std::nullopt;
}

}  // namespace

std::optional<boost::urls::url_view> parse_request_target(std::string_view target) {
  if (target == "*") {
    // A url_view views storage that must outlive it (a default-constructed
    // one, once copied, points into a dead temporary), so "*" is an empty
    // reference parsed from a literal. The router answers OPTIONS * from the
    // request target.
    static const boost::urls::url_view empty = boost::urls::parse_uri_reference("").value();
    return empty;
  }
  if (target.starts_with('/')) {
    auto url = boost::urls::parse_origin_form(target);
    if (!url) return std::nullopt;
    return *url;
  }
  auto url = boost::urls::parse_absolute_uri(target);
  if (!url) return std::nullopt;
  const auto scheme = url->scheme_id();
  if (scheme != boost::urls::scheme::http && scheme != boost::urls::scheme::https) return std::nullopt;
  // RFC 9110 §4.2.1 and §4.2.4: no empty host, and userinfo is an error.
  if (!url->has_authority() || url->encoded_host().empty() || url->has_userinfo()) return std::nullopt;
  return *url;
}

std::optional<rejection> check_request_head(const beast::http::request_header<fields>& head) {
  if (auto r = check_framing(head)) return r;
  if (auto r = check_host(head)) return r;
  if (auto r = check_singletons(head)) return r;
  return check_target(head);
}

rejection body_too_large(std::size_t max_body_bytes) {
  return {status::payload_too_large, fmt::format("request body exceeds {} bytes", max_body_bytes)};
}

rejection unreadable_request(const boost::system::error_code& ec, std::size_t max_body_bytes,
                             std::size_t max_header_bytes) {
  if (ec == bhttp::error::body_limit) return body_too_large(max_body_bytes);
  if (ec == bhttp::error::header_limit)
    return {status::request_header_fields_too_large, fmt::format("request header exceeds {} bytes", max_header_bytes)};
  return {status::bad_request, fmt::format("malformed HTTP request: {}", ec.message())};
}

}  // namespace feed::http
