// State shared by every thread of one run: immutable configuration decided
// before the threads start, the message ledger, the availability record,
// and a few flags.
//
// Thread-safety: everything except the atomics, the ledger and `avail`
// (which lock or are atomic themselves) is written only before the I/O
// threads start and is read-only afterwards.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/ip/tcp.hpp>

#include "bot/availability.h"
#include "bot/message_ledger.h"
#include "bot/options.h"
#include "bot/schedule.h"

namespace feed::bot {

using clock = std::chrono::steady_clock;

// One feed-api instance of --api, resolved.
struct instance_target {
  std::string url;
  std::string host_header;
  std::vector<boost::asio::ip::tcp::endpoint> endpoints;
};

struct run_context {
  run_context(bot_options o, schedule s) : opts(std::move(o)), sched(s), avail(opts.apis.size()) {}

  const bot_options opts;
  const schedule sched;
  std::string run_id;
  std::string token_prefix;                        // "#t<run_id>-"
  std::vector<instance_target> instances;          // one per --api entry, same order
  std::string feed_target;                         // path + query for subscribers
  std::unique_ptr<message_ledger> ledger;          // only when subscribers are on
  availability avail;                              // when posts could get a 202

  std::size_t instance_count() const noexcept { return instances.size(); }

  // The newest seq in the feed before posting started, or -1 when unknown.
  // A subscriber that loses its stream before its first event resumes from
  // here, so it misses none of this run's messages.
  std::atomic<std::int64_t> resume_floor{-1};

  // Time zero of the schedule; set just before posting starts.
  std::atomic<clock::rep> start_ticks{0};
  clock::time_point start() const noexcept {
    return clock::time_point(clock::duration(start_ticks.load(std::memory_order_acquire)));
  }

  // Set once: stop scheduling new messages (signal, or controller decision).
  std::atomic<bool> stop_posting{false};
  // Threads whose pacer has finished (all due or stopped).
  std::atomic<unsigned> pacing_done{0};
  // Threads whose share of the schedule is fully answered or cancelled.
  std::atomic<unsigned> posting_done{0};
};

}  // namespace feed::bot
