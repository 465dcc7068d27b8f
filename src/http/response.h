// Building responses: every body is JSON, every error is {"error": "..."}.
#pragma once

#include <string>
#include <string_view>

#include <boost/json/value.hpp>

#include "http/types.h"

namespace feed::http {

response json_response(const request& req, status s, const boost::json::value& body);
// The same response with a body already serialized (one JSON text plus "\n").
response json_body_response(const request& req, status s, std::string body);

// The head of an event stream (200, text/event-stream, no Content-Length:
// the stream ends when the connection closes). GET /api/feed writes it
// before the stream, HEAD answers with it.
response event_stream_head(const request& req);

// The message may quote client input of any bytes; the body is still valid
// UTF-8 JSON (see to_valid_utf8).
response error_response(const request& req, status s, std::string_view message);

// s with every ill-formed UTF-8 sequence replaced by U+FFFD, one per
// maximal invalid subpart (Unicode §3.9, as browsers decode).
std::string to_valid_utf8(std::string_view s);

// Turns a response to GET into the response to HEAD: the same status and
// headers with the GET body's Content-Length (none for an event stream,
// which has no length), and no body (RFC 9110 §9.3.2).
void strip_body_for_head(response& res);

}  // namespace feed::http
