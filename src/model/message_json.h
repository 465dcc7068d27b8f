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
#include <string_view>

#include "model/message.h"

namespace feed {

// The sizes of to_json(m, with_seq) and of its quoted, escaped strings,
// measured without writing it. Writing with them scans each string once
// more only when it has something to escape.
struct json_layout {
  std::size_t id, user_id, content;  // quoted and escaped
  std::size_t size;                   // the whole object
};
json_layout json_layout_of(const message& m, bool with_seq = false);

// The size of to_json(m, with_seq), computed without writing it.
inline std::size_t json_size(const message& m, bool with_seq = false) { return json_layout_of(m, with_seq).size; }

// Writes to_json(m, with_seq) at `out`, which has room for `layout.size`
// bytes (layout from json_layout_of(m, with_seq)); returns the end of what
// was written.
char* write_json(char* out, const message& m, const json_layout& layout, bool with_seq = false);
inline char* write_json(char* out, const message& m, bool with_seq = false) {
  return write_json(out, m, json_layout_of(m, with_seq), with_seq);
}

// Appends to_json(m, with_seq) to `out`, growing it once.
void append_json(std::string& out, const message& m, bool with_seq = false);

// One string or time as to_json writes its fields: for JSON that carries a
// message beside fields of its own (the Kafka envelope), so that those
// fields are escaped and formatted exactly as the message's are.
void append_json_string(std::string& out, std::string_view s);
void append_json_time(std::string& out, timestamp t);  // quoted format_rfc3339(t)

}  // namespace feed
