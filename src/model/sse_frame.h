// Server-Sent Events framing.
//
// An event is "id: <seq>\ndata: <json>\n\n". The JSON serializer escapes every
// control character, so no content can contain a raw CR or LF and no input
// can end an event early or forge one.
#pragma once

#include <string>

#include "model/message.h"

namespace feed {

std::string sse_event_frame(const message& m);

// Appends the same bytes to `out` (a page of catch-up events built in one
// buffer), growing it once per event.
void append_sse_event_frame(std::string& out, const message& m);

// A comment line; clients ignore it, proxies see traffic.
inline constexpr std::string_view kSseHeartbeat = ": keep-alive\n\n";

}  // namespace feed
