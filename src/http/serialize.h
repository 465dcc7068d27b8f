// Writing a response head: status line and header fields, as Beast's
// serializer writes them, into a caller-owned buffer. The server sends it
// and the body in one gathered write; Beast's general serializer (a state
// machine over chunked and buffered bodies) cost more CPU per 202 than the
// rest of sending it.
#pragma once

#include <string_view>

#include <boost/container/small_vector.hpp>

#include "http/types.h"

namespace feed::http {

// Room for every head this server writes, inline: on a coroutine's frame it
// costs no allocation.
using head_buffer = boost::container::small_vector<char, 512>;

// Appends "HTTP/1.x <code> <reason>\r\n", each field as "Name: value\r\n"
// in the order they were set, and the blank line that ends the head.
void append_head(const response& res, head_buffer& out);

}  // namespace feed::http
