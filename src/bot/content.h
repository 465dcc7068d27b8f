// Message content: varied sentences from a built-in vocabulary, each ending
// in a token "#t<run-id>-<i>" that makes message i of this run recognisable
// in the feed among history and other clients' messages.
//
// Content depends only on (seed, i), so runs are reproducible whatever the
// thread layout. Output is valid UTF-8 that needs no JSON escaping and is at
// most kMaxContentCodePoints code points. Pure functions; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace feed::bot {

inline constexpr std::size_t kMaxContentCodePoints = 280;

// 8 lowercase hex digits.
std::string make_run_id(std::uint64_t entropy);

// "#t<run_id>-" : what a subscriber searches for.
std::string token_prefix(std::string_view run_id);

// Finds "<prefix><digits>" in `text` and returns the digits' value.
std::optional<std::uint64_t> find_token(std::string_view text, std::string_view prefix) noexcept;

// The value of the first "id" member of a flat JSON object such as an SSE
// event's data ({"id":"<uuid>","user_id":...}) or a 503 body that names the
// message it may have stored; nullopt when there is none. A scan, not a
// parse: JSON escapes every quote inside a string, so `"id":"` can only be
// a member name. Ids hold no escapes (UUIDs).
std::optional<std::string_view> find_message_id(std::string_view json) noexcept;

// A 64-bit hash of a message id (FNV-1a), never 0.
std::uint64_t id_hash(std::string_view id) noexcept;

// Appends content for message i to `out`. target_bytes 0 = natural length
// (one to three sentences); otherwise approximately that many bytes.
void make_content(std::string& out, std::uint64_t seed, std::uint64_t i, std::size_t target_bytes,
                  std::string_view token_prefix);

// Appends the JSON request body {"user_id":...,"content":...}.
void make_post_body(std::string& out, std::string_view user_id, std::string_view content);

// Number of UTF-8 code points (counts lead bytes).
std::size_t count_code_points(std::string_view s) noexcept;

}  // namespace feed::bot
