// A message's JSON written straight into a caller's buffer.
//
// The bytes are exactly boost::json::serialize(to_json_object(m, with_seq)):
// the same key order, the same escapes (\" \\ \b \t \n \f \r, \u00XX with
// lower-case hex for the other control characters, everything else as is,
// U+2028 included) and the same created_at text as format_rfc3339. That is
// the form every client has always received; the object is not built
// because the broadcaster serializes every stored message, subscribers or
// not, and the object's allocations (a table, string copies, the timestamp
// string, the output) were most of that cost.
#pragma once

#include <cstddef>
#include <string>

#include "model/message.h"

namespace feed {

// The size of to_json(m, with_seq), computed without writing it.
std::size_t json_size(const message& m, bool with_seq = false);

// Writes to_json(m, with_seq) at `out`, which has room for json_size(m,
// with_seq) bytes; returns the end of what was written.
char* write_json(char* out, const message& m, bool with_seq = false);

// Appends to_json(m, with_seq) to `out`, growing it once.
void append_json(std::string& out, const message& m, bool with_seq = false);

}  // namespace feed
