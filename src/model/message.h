// The feed's one entity: a short message posted by a user.
//
// A message gets its id and created_at when the API accepts it, and its seq
// when the store commits it. The JSON form is the reference's:
// {"id","user_id","content","created_at"}; seq travels beside it (as the SSE
// event id, or as an extra "seq" field where a caller asks for it).
#pragma once

#include <string>

#include <boost/json/fwd.hpp>

#include "base/named_type.h"
#include "base/result.h"
#include "base/time.h"

namespace feed {

struct message {
  std::string id;        // UUID text, lower case
  std::string user_id;
  std::string content;
  timestamp created_at;
  seq_t seq;             // 0 until stored

  bool operator==(const message&) const = default;
};

// {"id","user_id","content","created_at"} plus "seq" when with_seq is set.
// to_json writes the text directly (model/message_json.h); it is byte for
// byte boost::json::serialize(to_json_object(m, with_seq)).
std::string to_json(const message& m, bool with_seq = false);
boost::json::object to_json_object(const message& m, bool with_seq = false);

// The longest user_id a store takes, in bytes. PostgreSQL's per-user index
// (user_id, seq) refuses an entry over 2,704 bytes (a B-tree row is at most
// a third of a page); the API takes 64.
inline constexpr std::size_t max_stored_user_id_bytes = 2048;

// Why the store would refuse `m`, or "" when it would not: its id must be a
// UUID in the 8-4-4-4-12 hex form (either case), no field may hold a NUL
// byte (the PostgreSQL wire cannot carry one), and its user_id must fit the
// per-user index. The API makes no such message; a record another producer
// wrote may be one, and a batch holding it would be refused whole, again
// and again.
std::string unstorable_reason(const message& m);

// Reads the reference's JSON shape (and "seq" when present). The fields must
// be present and strings; created_at must be RFC 3339.
result<message> message_from_json(const boost::json::value& v);

}  // namespace feed
