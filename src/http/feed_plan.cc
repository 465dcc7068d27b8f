#include "http/feed_plan.h"

#include <cstdint>

#include <fmt/format.h>

#include "http/query.h"
#include "model/post_request.h"

namespace feed::http {

result<feed_plan> plan_feed(const feed_params& in, const feed_limits& limits, seq_t head) {
  feed_plan p;
  std::optional<seq_t> resume_after;
  // A browser reconnecting sends Last-Event-ID by itself; it wins over a
  // ?since= left in the URL it reconnects to. That ?since= is still checked,
  // as ?history= is: a URL with a bad one was refused at its first connect,
  // and its reconnects are answered the same.
  std::optional<seq_t> since;
  if (in.since) {
    auto v = parse_integer(*in.since, "since", 0, INT64_MAX);
    if (!v) return v.err();
    since = seq_t{*v};
  }
  if (!in.last_event_id.empty()) {
    auto v = parse_integer(in.last_event_id, "Last-Event-ID", 0, INT64_MAX);
    if (!v) return v.err();
    resume_after = seq_t{*v};
  } else {
    resume_after = since;
  }
  // ?history= and ?user_id= are checked even when a resume makes ?history= moot.
  std::size_t history = limits.history_default;
  bool history_all = false;
  if (in.history) {
    if (*in.history == "all") {
      history_all = true;
    } else {
      auto v = parse_integer(*in.history, "history", 0, kMaxFeedHistory);
      if (!v)
        return error(errc::invalid_input, fmt::format("history must be 'all' or an integer from 0 to {}, got '{}'",
                                                      kMaxFeedHistory, *in.history));
      history = static_cast<std::size_t>(*v);
    }
  }
  if (in.user_id) {
    if (auto problem = check_user_id(*in.user_id, limits.max_user_id_bytes); !problem.empty())
      return error(errc::invalid_input, problem);
    p.user_id = *in.user_id;
  }

  if (resume_after) {
    p.from = feed_plan::start::resume;
    p.after = *resume_after;
    p.check_store_head = *resume_after > head;
  } else if (history_all) {
    p.from = feed_plan::start::everything;
    p.after = seq_t{0};
  } else if (p.user_id) {
    p.from = feed_plan::start::newest_by_author;
    p.after = head;
    p.newest = history;
  } else {
    // Seqs have no holes, so the n newest are the last n.
    p.from = feed_plan::start::newest;
    p.newest = history;
    const auto n = static_cast<std::int64_t>(history);
    p.after = seq_t{head.value() > n ? head.value() - n : 0};
  }
  return p;
}

}  // namespace feed::http
