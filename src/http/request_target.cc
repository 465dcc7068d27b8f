#include "http/request_target.h"

#include <array>

#include <boost/url/parse.hpp>

namespace feed::http {
namespace {

// Character classes of RFC 3986 §2-3, without pct-encoded: a '%' always
// takes the slow path, so the fast one never decodes.
enum : unsigned char {
  kRegName = 1,  // unreserved / sub-delims
  kPath = 2,     // pchar / "/"
  kQuery = 4,    // pchar / "/" / "?"
};

constexpr std::array<unsigned char, 256> make_classes() {
  std::array<unsigned char, 256> t{};
  auto add = [&t](std::string_view chars, unsigned char cls) {
    for (const char c : chars) t[static_cast<unsigned char>(c)] |= cls;
  };
  constexpr std::string_view alpha_digit = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  constexpr std::string_view unreserved_rest = "-._~";
  constexpr std::string_view sub_delims = "!$&'()*+,;=";
  for (const auto chars : {alpha_digit, unreserved_rest, sub_delims}) add(chars, kRegName | kPath | kQuery);
  add(":@/", kPath | kQuery);
  add("?", kQuery);
  return t;
}

constexpr auto kClasses = make_classes();

bool is(char c, unsigned char cls) { return (kClasses[static_cast<unsigned char>(c)] & cls) != 0; }

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// RFC 3986 IPv4address, the whole of s, each dec-octet in its one spelling.
bool is_ipv4_address(std::string_view s) {
  for (int octet = 0; octet < 4; ++octet) {
    if (octet > 0) {
      if (!s.starts_with('.')) return false;
      s.remove_prefix(1);
    }
    std::size_t n = 0;
    int value = 0;
    while (n < s.size() && n < 3 && is_digit(s[n])) value = value * 10 + (s[n++] - '0');
    if (n == 0 || (n > 1 && s[0] == '0') || value > 255) return false;
    s.remove_prefix(n);
  }
  return s.empty();
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

std::optional<std::string_view> plain_origin_path(std::string_view target) {
  if (!target.starts_with('/')) return std::nullopt;
  std::size_t i = 1;
  while (i < target.size() && target[i] != '?') {
    if (!is(target[i], kPath)) return std::nullopt;
    ++i;
  }
  const std::string_view path = target.substr(0, i);
  for (++i; i < target.size(); ++i)
    if (!is(target[i], kQuery)) return std::nullopt;
  return path;
}

bool plain_host(std::string_view value) {
  const auto colon = value.find(':');
  const std::string_view name = value.substr(0, colon);
  if (name.empty()) return false;
  for (const char c : name)
    if (!is(c, kRegName)) return false;
  // boost::urls takes the longest IPv4 address at the start of a host and
  // does not go back to reading a reg-name after it, so "127.0.0.1$1" or
  // "1.2.3.4.5" is refused although RFC 3986 reads it as a reg-name. A name
  // starting with a digit is plain only when it is an address as a whole;
  // the others keep boost::urls' answer.
  if (is_digit(name.front()) && !is_ipv4_address(name)) return false;
  if (colon == std::string_view::npos) return true;
  const std::string_view port = value.substr(colon + 1);
  if (port.empty() || port.size() > 5) return false;
  for (const char c : port)
    if (!is_digit(c)) return false;
  return true;
}

bool valid_host(std::string_view value) {
  if (value.empty() || plain_host(value)) return true;
  auto authority = boost::urls::parse_authority(value);
  return authority && !authority->has_userinfo();
}

bool has_escaped_slash(std::string_view encoded_path) {
  for (auto at = encoded_path.find('%'); at != std::string_view::npos; at = encoded_path.find('%', at + 1))
    if (at + 2 < encoded_path.size() && encoded_path[at + 1] == '2' && (encoded_path[at + 2] | 0x20) == 'f')
      return true;
  return false;
}

std::optional<request_target> request_target::parse(std::string_view target) {
  request_target t;
  t.text_ = target;
  if (auto path = plain_origin_path(target)) {
    t.path_ = *path;
    return t;
  }
  auto url = parse_request_target(target);
  if (!url) return std::nullopt;
  t.url_ = *url;
  if (target == "*") return t;
  // An absolute-form target may have an empty path, which means "/".
  if (url->encoded_path().empty()) t.path_ = "/";
  else if (url->encoded_path().decoded_size() == url->encoded_path().size()) t.path_ = url->encoded_path();
  // "%2F" is a '/' inside one segment, not a separator (RFC 3986 §2.2):
  // decoded, "/api%2Fmessages" would reach the handler of "/api/messages",
  // past whatever a proxy in front enforces for that path. Such a path
  // routes as sent, which names no endpoint.
  else if (has_escaped_slash(url->encoded_path())) t.path_ = url->encoded_path();
  else t.decoded_ = url->path();
  return t;
}

request_target::operator boost::urls::url_view() const {
  // Only the plain origin-form leaves the URL unparsed, and boost::urls
  // accepts every such target.
  if (!url_) url_ = *parse_request_target(text_);
  return *url_;
}

}  // namespace feed::http
