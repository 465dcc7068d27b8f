// Figures of a run: summed over I/O threads for the progress line, and the
// final JSON summary (the last line on stdout).
//
// Reading is safe while the threads run (relaxed counters, histogram
// snapshots); the verification part is filled by the controller after
// every thread has stopped.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <boost/json/object.hpp>

#include "bot/delivery_tally.h"
#include "bot/histogram.h"
#include "bot/run_context.h"
#include "bot/worker.h"

namespace feed::bot {

struct stats_sum {
  std::uint64_t scheduled = 0, requests = 0, ok_2xx = 0, client_4xx = 0, server_5xx = 0, other_status = 0,
                transport_errors = 0, dropped_by_client = 0, cancelled = 0, retries = 0, connect_failures = 0, resent_stale = 0,
                in_flight = 0, queued = 0;
  std::uint64_t subs_live = 0, subs_ready = 0, sub_reconnects = 0, events = 0, heartbeats = 0, deliveries = 0,
                duplicate_events = 0, foreign_events = 0;

  std::uint64_t errors() const noexcept { return client_4xx + server_5xx + other_status + transport_errors; }
  std::uint64_t answered() const noexcept { return ok_2xx + errors(); }
};

stats_sum sum_stats(const std::vector<std::unique_ptr<worker>>& workers);

// Merged snapshots of every thread's histograms.
void merge_post_latency(const std::vector<std::unique_ptr<worker>>& workers, histogram& into);
void merge_e2e_latency(const std::vector<std::unique_ptr<worker>>& workers, histogram& into);

std::string progress_line(double elapsed_s, const stats_sum& now, const stats_sum& prev, double dt_s,
                          const histogram& post, const histogram& e2e, unsigned subscribers);

struct run_outcome {
  double posting_s = 0;  // schedule start to last answer
  double total_s = 0;    // process start to report
  unsigned subscribers_failed = 0;
  bool verified = false;
  verify_totals verify;
  int exit_code = 0;
};

boost::json::object summary_json(const run_context& ctx, const stats_sum& s, const histogram& post,
                                 const histogram& e2e, const run_outcome& r);

}  // namespace feed::bot
