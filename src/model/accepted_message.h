// Deciding what a POST /api/messages makes of its request: either the
// message to enqueue, or why the request is refused and with which status.
//
// A pure function of the request's relevant parts, the limits, the time
// and an id source: no I/O, safe from any thread. Body size is not checked
// here: the server refuses an oversized body (413) before reading it.
#pragma once

#include <functional>
#include <string>
#include <optional>
#include <string_view>
#include <variant>
#include <vector>

#include "base/time.h"
#include "model/message.h"
#include "model/message_id.h"
#include "model/post_request.h"

namespace feed {

// What the decision reads from a request. Views into the request, which
// must outlive the call.
struct post_input {
  std::string_view body;
  std::optional<std::string_view> content_type;    // absent: read as JSON
  bool content_encoded = false;                    // any Content-Encoding header
  std::vector<std::string_view> idempotency_keys;  // every Idempotency-Key line, in order
};

struct accepted_post {
  message msg;         // id and created_at set; seq still 0
  bool keyed = false;  // the id comes from an Idempotency-Key
};

// The values are the HTTP status codes to answer with.
enum class refusal_status : unsigned { bad_request = 400, unsupported_media_type = 415 };

struct post_refusal {
  refusal_status status;
  std::string message;  // shown to the client as {"error": "..."}
};

using post_decision = std::variant<accepted_post, post_refusal>;

// `new_id` names a message posted without a key; a keyed message's id is
// derived from (user_id, key), so that a retry names the same message.
post_decision build_accepted_message(const post_input& in, const post_limits& limits, timestamp now,
                                     const std::function<std::string()>& new_id = random_message_id);

}  // namespace feed
