// Message ids: UUIDv7 (time-ordered, 74 random bits), or UUIDv5 derived
// from (user_id, idempotency key) so that retrying a POST with the same key
// names the same message and the store's idempotent insert keeps one copy.
#pragma once

#include <string>
#include <string_view>

#include "base/time.h"

namespace feed {

std::string random_message_id();
// Appends a fresh UUIDv7, random_message_id's 36 characters, to `out`, its
// time bits from `now`: the Kafka envelope takes one per record, writes it
// into its own buffer and passes the time it stamps the record with, one
// clock read for both.
void append_uuid7(std::string& out, timestamp now = now_utc());
std::string message_id_for_key(std::string_view user_id, std::string_view idempotency_key);

// Whether `id` is a UUID in the 8-4-4-4-12 hex form, in either case: what
// the stores take as a message id.
bool is_uuid_text(std::string_view id) noexcept;

}  // namespace feed
