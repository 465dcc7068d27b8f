// The idempotent producer's state, read from librdkafka's statistics.
//
// librdkafka has no call that says whether an idempotent producer holds a
// producer id, and until it does every record waits in its local queue: on
// a fresh broker the first InitProducerId can take seconds ("coordinator
// load in progress"), longer than a post's publish timeout. The statistics
// document (STATISTICS.md, object "eos") names the state; "Assigned" is the
// one in which records go out.
#pragma once

#include <optional>
#include <string_view>

namespace feed {

inline constexpr std::string_view producer_id_assigned = "Assigned";

// The value of "idemp_state" in a statistics document, or nothing when it
// has none or the value is not a short plain string. "eos" is the last
// object librdkafka writes, after every topic and broker name, so the last
// occurrence of the key is taken.
std::optional<std::string_view> idempotence_state(std::string_view stats_json);

}  // namespace feed
