// Checks of a parsed request head that the parser leaves to the server:
// how the body is framed (RFC 9112 §6), Host (§3.2) and the request-target
// form (§3.2.1-3.2.4). Pure functions of the head, so that they can be unit
// tested and fuzzed without a socket.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <boost/beast/http/message.hpp>
#include <boost/url/url_view.hpp>

#include "http/types.h"

namespace feed::http {

// Why a request is refused. The connection is closed after the answer,
// since a request refused for its framing leaves the rest of the stream
// unreadable.
struct rejection {
  status code;
  std::string message;
};

// The request-target as a URL whose path and query route the request:
// origin-form ("/p?q") or absolute-form with an http or https scheme
// ("http://host/p?q", whose path may be empty). Asterisk-form ("*") gives
// an empty view. nullopt for anything else (authority-form included).
std::optional<boost::urls::url_view> parse_request_target(std::string_view target);

// `s` without the optional whitespace (spaces and tabs, RFC 9110 5.6.3)
// around list elements and parameters.
std::string_view trim_ows(std::string_view s);

// nullopt when the head may be served; else the status and message to answer.
std::optional<rejection> check_request_head(const beast::http::request_header<>& head);

}  // namespace feed::http
