// Where a GET /api/feed stream starts, decided from the request alone.
//
// A pure function of the query parameters, the Last-Event-ID header, the
// API's limits and this instance's head, so that every rule about them is
// unit tested without a socket or a store. The handler carries the plan
// out: it may read the store (the head, or where an author's newest events
// begin) and then hands the stream to the hub, which decides at that moment
// whether its ring still covers the start.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/named_type.h"
#include "base/result.h"

namespace feed::http {

// The request's inputs, as sent.
struct feed_params {
  std::string_view last_event_id;      // the Last-Event-ID header; empty when absent
  std::optional<std::string> since;    // ?since=
  std::optional<std::string> history;  // ?history=N or ?history=all
  std::optional<std::string> user_id;  // ?user_id=
};

struct feed_limits {
  std::size_t history_default = 100;   // events sent first without ?history= (and without a resume)
  std::size_t max_user_id_bytes = 64;  // as for posts
};

// The largest ?history=N.
inline constexpr std::int64_t kMaxFeedHistory = 1'000'000;

struct feed_plan {
  enum class start {
    resume,            // after the client's last event: Last-Event-ID or ?since=
    everything,        // ?history=all
    newest,            // the `newest` last events of the feed
    newest_by_author,  // the `newest` last events by user_id, found in the store below `after`
  };
  start from = start::newest;
  // Events with seq > after are delivered (newest_by_author: the search for
  // the author's newest events starts at this seq, the head, and goes down).
  seq_t after{0};
  std::size_t newest = 0;               // newest and newest_by_author: how many
  std::optional<std::string> user_id;   // only this author's events, when set
  // resume only: the resume point is past this instance's head. With Kafka
  // that is normal (the event is on its way), but a point past the store's
  // head too must be reset to it, so the store's head is read first.
  bool check_store_head = false;
};

// The plan, or invalid_input with the message a 400 answer carries.
// `head` is the last seq this instance has delivered.
result<feed_plan> plan_feed(const feed_params& in, const feed_limits& limits, seq_t head);

}  // namespace feed::http
