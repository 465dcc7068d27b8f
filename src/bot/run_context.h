// State shared by every thread of one run: immutable configuration decided
// before the threads start, the message ledger, and a few flags.
//
// Thread-safety: everything except the atomics and the ledger is written
// only before the I/O threads start and is read-only afterwards.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/ip/tcp.hpp>

#include "bot/message_ledger.h"
#include "bot/options.h"
#include "bot/schedule.h"

namespace feed::bot {

using clock = std::chrono::steady_clock;

struct run_context {
  run_context(bot_options o, schedule s) : opts(std::move(o)), sched(s) {}

  const bot_options opts;
  const schedule sched;
  std::string run_id;
  std::string token_prefix;                        // "#t<run_id>-"
  std::vector<boost::asio::ip::tcp::endpoint> endpoints;  // resolved API address(es)
  std::string host_header;
  std::string feed_target;                         // path + query for subscribers
  std::unique_ptr<message_ledger> ledger;          // only when subscribers are on

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
