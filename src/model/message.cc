#include "model/message.h"

#include <algorithm>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "model/message_id.h"
#include "model/message_json.h"

namespace feed {

boost::json::object to_json_object(const message& m, bool with_seq) {
  boost::json::object o;
  o.reserve(5);
  o.emplace("id", m.id);
  o.emplace("user_id", m.user_id);
  o.emplace("content", m.content);
  o.emplace("created_at", format_rfc3339(m.created_at));
  if (with_seq) o.emplace("seq", m.seq.value());
  return o;
}

std::string to_json(const message& m, bool with_seq) {
  std::string out;
  append_json(out, m, with_seq);
  return out;
}

std::string unstorable_reason(const message& m) {
  if (!is_uuid_text(m.id)) {
    std::string shown = m.id.substr(0, 64);
    std::replace(shown.begin(), shown.end(), '\0', ' ');
    return fmt::format("data.id \"{}\" is not a UUID", shown);
  }
  if (m.user_id.find('\0') != std::string::npos) return "data.user_id contains a NUL character";
  if (m.user_id.size() > max_stored_user_id_bytes)
    return fmt::format("data.user_id is {} bytes, over the {} the store's per-user index takes", m.user_id.size(),
                       max_stored_user_id_bytes);
  if (m.content.find('\0') != std::string::npos) return "data.content contains a NUL character";
  return {};
}

result<message> message_from_json(const boost::json::value& v) {
  const auto* o = v.if_object();
  if (!o) return error(errc::corrupt, "message is not a JSON object");
  auto field = [&](const char* name) -> const boost::json::string* {
    const auto* f = o->if_contains(name);
    return f ? f->if_string() : nullptr;
  };
  const auto *id = field("id"), *user = field("user_id"), *content = field("content"), *created = field("created_at");
  if (!id || !user || !content || !created)
    return error(errc::corrupt, "message lacks one of id, user_id, content, created_at as strings");
  auto at = parse_rfc3339(*created);
  if (!at) return error(errc::corrupt, "message created_at is not RFC 3339");
  message m{std::string(*id), std::string(*user), std::string(*content), *at, seq_t{0}};
  if (const auto* s = o->if_contains("seq")) {
    if (const auto* n = s->if_int64()) m.seq = seq_t{*n};
    else if (const auto* u = s->if_uint64()) m.seq = seq_t{static_cast<std::int64_t>(*u)};
    else return error(errc::corrupt, "message seq is not an integer");
  }
  return m;
}

}  // namespace feed
