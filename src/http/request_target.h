// The request-target of an accepted request, as routing and the handlers
// read it, and the Host header's check. Both are read on every request, so
// the common spellings (an origin-form target of plain characters, a Host
// of a plain name and port) are recognised by a scan that gives exactly
// what boost::urls would; anything else is left to boost::urls itself.
//
// A request_target views the target's characters: the request must outlive
// it. Not thread-safe (the URL is parsed on first use and kept).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <boost/url/url_view.hpp>

namespace feed::http {

// The request-target as a URL whose path and query route the request:
// origin-form ("/p?q") or absolute-form with an http or https scheme
// ("http://host/p?q", whose path may be empty). Asterisk-form ("*") gives
// an empty view. nullopt for anything else (authority-form included).
std::optional<boost::urls::url_view> parse_request_target(std::string_view target);

// The plain origin-form target: "/", then only characters that stand for
// themselves in a path or query (no '%', '#', space, control or non-ASCII
// byte). Such a target is one boost::urls accepts, and its decoded path is
// the text before the first '?'. nullopt when the target is not of this
// kind, which says nothing about whether it is valid.
std::optional<std::string_view> plain_origin_path(std::string_view target);

// Whether a Host header value may be served: empty (allowed when the target
// names no authority), or an authority without userinfo.
bool valid_host(std::string_view value);

// Whether value is a plain "name" or "name:port": a non-empty reg-name of
// unreserved and sub-delim characters (an IPv4 address as a whole if it
// starts with a digit), then at most a colon and one to five digits. Such
// a value is valid_host; false says nothing about validity.
bool plain_host(std::string_view value);

// Whether an encoded path holds an escaped '/' ("%2F" or "%2f").
bool has_escaped_slash(std::string_view encoded_path);

class request_target {
 public:
  // An empty target, as for "*".
  request_target() = default;

  // nullopt unless parse_request_target accepts the target.
  static std::optional<request_target> parse(std::string_view target);

  // The text parsed.
  std::string_view text() const { return text_; }

  // The percent-decoded path that routes the request: "/" for an
  // absolute-form target without a path, empty for "*"; a path with an
  // escaped '/' stays as sent (see has_escaped_slash).
  std::string_view path() const { return decoded_ ? std::string_view(*decoded_) : path_; }

  // The target as boost::urls sees it (for its query parameters): the one
  // parse_request_target gives.
  operator boost::urls::url_view() const;

 private:
  std::string_view text_;
  std::string_view path_;               // when the path needs no decoding
  std::optional<std::string> decoded_;  // when it did
  mutable std::optional<boost::urls::url_view> url_;
};

}  // namespace feed::http
