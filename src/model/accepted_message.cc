#include "model/accepted_message.h"

#include <optional>

#include "base/ascii.h"
#include <fmt/format.h>

#include "model/media_type.h"

namespace feed {
namespace {

constexpr std::size_t kMaxKeyBytes = 128;

post_refusal refuse(refusal_status status, std::string message) { return {status, std::move(message)}; }

// Header values quoted in errors: at most 100 bytes, control characters
// shown as '?'. Bytes that are not UTF-8 are left for the error response,
// which shows them as U+FFFD as it does everywhere else.
std::string printable(std::string_view v) {
  std::string out;
  for (char c : v.substr(0, 100)) out.push_back((c >= 0 && c < 0x20) || c == 0x7f ? '?' : c);
  return out;
}

bool is_utf8_charset(std::string_view charset) {
  return charset.empty() || ascii_iequals(charset, "utf-8") || ascii_iequals(charset, "utf8");
}

// What is wrong with how the body is encoded, if anything. A post without
// a Content-Type is read as JSON; one with an empty Content-Type names no
// media type at all, which is not JSON's.
std::optional<post_refusal> check_encoding(const post_input& in) {
  if (in.content_encoded)
    return refuse(refusal_status::unsupported_media_type,
                  "Content-Encoding is not supported; send the JSON body as is, without a Content-Encoding header");
  if (!in.content_type) return std::nullopt;
  const auto ct = *in.content_type;
  if (trim_ows(ct).empty())
    return refuse(refusal_status::unsupported_media_type,
                  "Content-Type is empty; send application/json, or no Content-Type at all");
  if (!is_json_media_type(ct))
    return refuse(refusal_status::unsupported_media_type, "Content-Type must be application/json, got " + printable(ct));
  auto cs = charset_of(ct);
  if (!cs) return refuse(refusal_status::unsupported_media_type, cs.err().message);
  if (!is_utf8_charset(*cs))
    return refuse(refusal_status::unsupported_media_type,
                  "the body must be UTF-8 JSON; Content-Type names charset " + printable(*cs));
  return std::nullopt;
}

// What is wrong with the Idempotency-Key lines, or "".
std::string check_keys(const std::vector<std::string_view>& keys) {
  if (keys.empty()) return {};
  if (keys.size() > 1) return "send at most one Idempotency-Key header";
  for (char c : keys.front())
    if (c < 0x21 || c > 0x7e) return "Idempotency-Key may contain only visible ASCII characters";
  if (keys.front().empty() || keys.front().size() > kMaxKeyBytes)
    return fmt::format("Idempotency-Key must be 1 to {} characters", kMaxKeyBytes);
  return {};
}

}  // namespace

post_decision build_accepted_message(const post_input& in, const post_limits& limits, timestamp now,
                                     const std::function<std::string()>& new_id) {
  if (auto bad = check_encoding(in)) return std::move(*bad);
  if (auto problem = check_keys(in.idempotency_keys); !problem.empty())
    return refuse(refusal_status::bad_request, std::move(problem));
  auto parsed = parse_post_request(in.body, limits);
  if (!parsed) return refuse(refusal_status::bad_request, parsed.err().message);

  accepted_post out;
  out.keyed = !in.idempotency_keys.empty();
  out.msg.id = out.keyed ? message_id_for_key(parsed->user_id, in.idempotency_keys.front()) : new_id();
  out.msg.user_id = std::move(parsed->user_id);
  out.msg.content = std::move(parsed->content);
  out.msg.created_at = now;
  return out;
}

}  // namespace feed
