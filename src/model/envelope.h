// The Kafka envelope: how a message travels on the events-to-process and
// events-processed topics, in the reference system's shape
//
//   {"id": "<uuid>", "event_type": "message.created",
//    "timestamp": "2024-05-01T12:00:00.123456Z", "version": "1.0",
//    "data": {"id", "user_id", "content", "created_at"[, "seq"]}}
//
// `id` names the envelope (a fresh UUID per encode, not the message id),
// `timestamp` is when it was encoded. Messages accepted by the API travel
// as "message.created" without seq; messages the worker stored travel on
// events-processed as "message.processed" with their seq inside data.
//
// Decoding follows the reference's tolerance: unknown fields are ignored and
// any RFC 3339 offset is accepted, but every field that is present must have
// the right type. Required: a "data" object with string id, user_id and
// content; id must not be empty, user_id may be (the reference's API
// publishes a post without one so, and its worker stores it). created_at is optional (the decode time when absent) and seq is
// optional (0 when absent). Envelope-level fields are optional too: nothing
// downstream depends on them, and producers of the reference's topics are
// not all ours. Errors are errc::corrupt with a message naming the field.
//
// Thread safety: free functions over values; safe from any thread.
#pragma once

#include <string>
#include <string_view>

#include "base/result.h"
#include "model/message.h"

namespace feed {

inline constexpr std::string_view event_message_created = "message.created";
inline constexpr std::string_view event_message_processed = "message.processed";
inline constexpr std::string_view envelope_version = "1.0";

struct envelope {
  std::string id;          // empty when the producer sent none
  std::string event_type;  // as sent; not checked against the known types
  std::string version;
  timestamp at{};          // epoch when the producer sent none
  message msg;             // seq 0 unless "seq" was in data
};

// Serialized envelope of `m`; `with_seq` adds data.seq (events-processed).
// The bytes are what boost::json::serialize gives for the same object.
std::string encode_envelope(const message& m, std::string_view event_type, bool with_seq);
// The same, replacing the contents of `out`: a caller that encodes one
// record after another reuses one buffer instead of a heap string each.
void encode_envelope_into(std::string& out, const message& m, std::string_view event_type, bool with_seq);

// Parses one envelope from a Kafka record value.
result<envelope> decode_envelope(std::string_view json);
// Only its message, for readers that ignore the envelope's own fields: the
// same checks and errors as decode_envelope, without copying those fields.
result<message> decode_envelope_message(std::string_view json);

// decode_envelope without its fast reader for encode_envelope's own shape:
// every record goes through the JSON parser. Only for checking that the two
// read every record alike (fuzz/envelope.cc), which cannot be seen through
// decode_envelope, where the parser only sees what the fast reader passes on.
result<envelope> decode_envelope_general(std::string_view json);

}  // namespace feed
