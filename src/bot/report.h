// Figures of a run: summed over I/O threads for the progress line, and the
// final JSON summary (the last line on stdout).
//
// Reading is safe while the threads run (relaxed counters, histogram
// snapshots, the locked availability record); the verification part and
// the subscribers' figures are filled by the controller after every thread
// has stopped.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>

#include "bot/delivery_tally.h"
#include "bot/histogram.h"
#include "bot/io_thread.h"
#include "bot/run_context.h"

namespace feed::bot {

// instance_stats summed over threads.
struct instance_sum {
  std::uint64_t requests = 0, answered_2xx = 0, answered_503 = 0, answered_other = 0, transport_errors = 0,
                connect_failures = 0, conns_live = 0, subs_live = 0, stream_opens = 0, stream_failures = 0;
};

struct stats_sum {
  std::uint64_t scheduled = 0, requests = 0, ok_2xx = 0, client_4xx = 0, server_5xx = 0, unavailable_503 = 0,
                other_status = 0, transport_errors = 0, dropped_by_client = 0, cancelled = 0, retries = 0,
                transport_retries = 0, unknown_outcome = 0, connect_failures = 0, resent_stale = 0, in_flight = 0,
                queued = 0;
  std::uint64_t subs_live = 0, subs_ready = 0, sub_reconnects = 0, events = 0, heartbeats = 0, deliveries = 0,
                duplicate_events = 0, foreign_events = 0, content_duplicates = 0, stream_resets = 0;
  std::uint64_t coroutine_failures = 0;
  std::vector<instance_sum> instances;

  std::uint64_t errors() const noexcept { return client_4xx + server_5xx + other_status + transport_errors; }
  std::uint64_t answered() const noexcept { return ok_2xx + errors(); }
};

stats_sum sum_stats(const std::vector<std::unique_ptr<io_thread>>& threads);

// Merged snapshots of every thread's histograms.
void merge_latencies(const std::vector<std::unique_ptr<io_thread>>& threads, histogram& post, histogram& e2e);

// One word for how an instance did between two snapshots: "up" (202s and
// no failures, or open connections and nothing to do), "flaky" (202s and
// failures), "failing" (failures or an open outage, no 202, still
// connected), "down" (the same with nothing connected), "idle" (nothing
// happened, nothing open). `outage`: the instance has an open outage
// (availability.h), which outlasts the pauses between reconnect attempts.
std::string_view instance_health(const instance_sum& now, const instance_sum& prev, bool outage);

// `outage[k]`: instance k has an open outage (shown only for several instances).
std::string progress_line(double elapsed_s, const stats_sum& now, const stats_sum& prev, double dt_s,
                          const histogram& post, const histogram& e2e, unsigned subscribers,
                          const std::vector<bool>& outage);

// What the subscribers did, read from them after their threads stopped.
struct subscriber_figures {
  std::uint64_t reconnects_max = 0;  // most reopened streams of one subscriber
  double longest_gap_s = 0;          // longest disconnect of one subscriber
};
subscriber_figures collect_subscriber_figures(const std::vector<std::unique_ptr<io_thread>>& threads);

struct run_outcome {
  double posting_s = 0;  // schedule start to last answer
  double total_s = 0;    // process start to report
  unsigned subscribers_failed = 0;
  bool verified = false;
  verify_totals verify;
  std::uint64_t duplicated_content = 0;  // messages stored under two ids (ledger)
  subscriber_figures subs;
  stats_sum at_end;  // just before shutdown: which streams were still open
  int exit_code = 0;
};

boost::json::object summary_json(const run_context& ctx, const stats_sum& s, const histogram& post,
                                 const histogram& e2e, const run_outcome& r);

}  // namespace feed::bot
