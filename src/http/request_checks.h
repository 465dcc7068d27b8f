// Checks of a parsed request head that the parser leaves to the server:
// how the body is framed (RFC 9112 §6), Host (§3.2) and the request-target
// form (§3.2.1-3.2.4). Pure functions of the head, so that they can be unit
// tested and fuzzed without a socket.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <boost/beast/http/message.hpp>
#include <boost/system/error_code.hpp>

#include "http/request_target.h"
#include "http/types.h"
#include "model/media_type.h"  // trim_ows

namespace feed::http {

// Why a request is refused. The connection is closed after the answer,
// since a request refused for its framing leaves the rest of the stream
// unreadable.
struct rejection {
  status code;
  std::string message;
};

// nullopt when the head may be served; else the status and message to answer.
std::optional<rejection> check_request_head(const beast::http::request_header<fields>& head);

// What the checks learnt of a head they accepted, so that the server's
// later steps need not look again.
struct accepted_head {
  request_target target;           // the parsed request-target
  bool transfer_encoding = false;  // it has a Transfer-Encoding field
  bool expect_continue = false;    // the client waits for 100 Continue before its body
  bool keep_alive = false;         // the client lets the connection stay open after the answer
};

// check_request_head, filling `accepted` when it returns nullopt.
std::optional<rejection> check_request_head(const beast::http::request_header<fields>& head,
                                            accepted_head& accepted);

// A body over the limit, whether its Content-Length says so up front or the
// parser finds out while reading: 413.
rejection body_too_large(std::size_t max_body_bytes);

// What to answer a request the parser could not read: 413 or 431 past its
// limits, else 400 naming the parse error.
rejection unreadable_request(const boost::system::error_code& ec, std::size_t max_body_bytes,
                             std::size_t max_header_bytes);

}  // namespace feed::http
