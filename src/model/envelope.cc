#include "model/envelope.h"

#include <limits>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "model/message_id.h"

namespace feed {

std::string encode_envelope(const message& m, std::string_view event_type, bool with_seq) {
  boost::json::object o;
  o.reserve(5);
  o.emplace("id", random_message_id());
  o.emplace("event_type", event_type);
  o.emplace("timestamp", format_rfc3339(now_utc()));
  o.emplace("version", envelope_version);
  o.emplace("data", to_json_object(m, with_seq));
  return boost::json::serialize(o);
}

namespace {

error bad(std::string what) { return error(errc::corrupt, "envelope " + std::move(what)); }

// The string at `key`, nullptr when absent; an error when present but not a string.
result<const boost::json::string*> optional_string(const boost::json::object& o, std::string_view key,
                                                   std::string_view where) {
  const auto* v = o.if_contains(key);
  if (!v) return static_cast<const boost::json::string*>(nullptr);
  if (const auto* s = v->if_string()) return s;
  return bad(fmt::format("{}{} is not a string", where, key));
}

result<std::string> required_string(const boost::json::object& o, std::string_view key) {
  auto s = optional_string(o, key, "data.");
  if (!s) return s.err();
  if (!*s) return bad(fmt::format("data.{} is missing", key));
  if ((*s)->empty()) return bad(fmt::format("data.{} is empty", key));
  return std::string(**s);
}

result<timestamp> optional_time(const boost::json::object& o, std::string_view key, std::string_view where,
                                timestamp fallback) {
  auto s = optional_string(o, key, where);
  if (!s) return s.err();
  if (!*s) return fallback;
  auto t = parse_rfc3339(**s);
  if (!t) return bad(fmt::format("{}{} is not an RFC 3339 time: \"{}\"", where, key, std::string_view(**s)));
  return *t;
}

result<seq_t> optional_seq(const boost::json::object& o) {
  const auto* v = o.if_contains("seq");
  if (!v) return seq_t{0};
  std::int64_t n;
  if (const auto* i = v->if_int64()) n = *i;
  else if (const auto* u = v->if_uint64(); u && *u <= std::uint64_t(std::numeric_limits<std::int64_t>::max()))
    n = static_cast<std::int64_t>(*u);
  else return bad("data.seq is not a 64-bit integer");
  if (n < 0) return bad(fmt::format("data.seq is negative ({})", n));
  return seq_t{n};
}

}  // namespace

result<envelope> decode_envelope(std::string_view json) {
  // The tree lives only in this call: build it in a stack buffer (spilling
  // to the heap for large records) instead of one allocation per node.
  unsigned char buffer[4096];
  boost::json::monotonic_resource arena(buffer, sizeof buffer);
  boost::system::error_code ec;
  boost::json::value root = boost::json::parse(json, ec, &arena);
  if (ec) return bad(fmt::format("is not valid JSON: {}", ec.message()));
  const auto* o = root.if_object();
  if (!o) return bad("is not a JSON object");

  envelope e;
  for (auto [key, out] : {std::pair{"id", &e.id}, {"event_type", &e.event_type}, {"version", &e.version}}) {
    auto s = optional_string(*o, key, "");
    if (!s) return s.err();
    if (*s) *out = std::string(**s);
  }
  auto at = optional_time(*o, "timestamp", "", timestamp{});
  if (!at) return at.err();
  e.at = *at;

  const auto* d = o->if_contains("data");
  if (!d) return bad("has no data");
  const auto* data = d->if_object();
  if (!data) return bad("data is not a JSON object");

  auto id = required_string(*data, "id");
  if (!id) return id.err();
  auto user = required_string(*data, "user_id");
  if (!user) return user.err();
  // Empty content is the API's to refuse; here only the type matters.
  auto content = optional_string(*data, "content", "data.");
  if (!content) return content.err();
  if (!*content) return bad("data.content is missing");
  auto created = optional_time(*data, "created_at", "data.", now_utc());
  if (!created) return created.err();
  auto seq = optional_seq(*data);
  if (!seq) return seq.err();

  e.msg = message{std::move(*id), std::move(*user), std::string(**content), *created, *seq};
  return e;
}

}  // namespace feed
