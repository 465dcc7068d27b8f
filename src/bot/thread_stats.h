// Counters of one I/O thread. Written only by that thread (plain load+store
// on relaxed atomics, no locked instructions); read by the controller for
// the progress line and by the final summary after the thread has stopped.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace feed::bot {

class counter {
 public:
  void add(std::uint64_t n = 1) noexcept { v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  void sub(std::uint64_t n = 1) noexcept { v_.store(v_.load(std::memory_order_relaxed) - n, std::memory_order_relaxed); }
  std::uint64_t get() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> v_{0};
};

// What one thread saw of one feed-api instance: every attempt, not final outcomes.
struct instance_stats {
  counter requests;          // posts written to it, retries and resends included
  counter answered_2xx;
  counter answered_503;
  counter answered_other;    // any other status
  counter transport_errors;  // attempts that got no complete answer (resends included)
  counter connect_failures;  // posting connections that could not connect
  counter conns_live;        // gauge: posting connections open to it
  counter subs_live;         // gauge: subscriber streams open to it
  counter stream_opens;      // 200 stream heads received from it
  counter stream_failures;   // subscriber connects or heads that failed
};

struct thread_stats {
  explicit thread_stats(std::size_t instances) : per_instance(instances) {}

  // Posting: one final outcome per scheduled message.
  counter scheduled;          // became due
  counter requests;           // requests written, retries included
  counter ok_2xx;             // final answer 2xx
  counter client_4xx;         // final answer 4xx
  counter server_5xx;         // final answer 5xx (503 after the last retry included)
  counter unavailable_503;    // final answer 503, after the last retry (part of server_5xx)
  counter other_status;       // 1xx/3xx final answers
  counter transport_errors;   // connect/write/read failure or timeout mid-request
  counter dropped_by_client;  // local queue full when due
  counter cancelled;          // still queued or awaiting a retry at stop
  counter retries;            // 503 answers that were retried
  counter transport_retries;  // transport failures that were retried on the next instance
  counter unknown_outcome;    // final outcome not 2xx, but some attempt may have been stored
  counter connect_failures;   // failed connection attempts (posting)
  counter resent_stale;       // posts sent again because an idle kept-alive connection had been closed
  counter in_flight;          // gauge: requests written, not yet answered
  counter queued;             // gauge: due messages waiting for a connection

  // Subscribing.
  counter subs_live;          // gauge: streams currently open
  counter subs_ready;         // subscribers that opened their stream at least once
  counter subs_failed;        // subscribers that gave up connecting
  counter sub_reconnects;
  counter events;             // all SSE events
  counter heartbeats;         // comment lines
  counter deliveries;         // first deliveries of this run's messages
  counter duplicate_events;   // repeat deliveries of this run's messages
  counter foreign_events;     // events not from this run
  counter content_duplicates; // events of this run's messages under a second id
  counter stream_resets;      // "reset" events (Last-Event-ID ahead of the store)
  counter coroutine_failures; // coroutines ended by an exception (spawn.h)

  // Indexed like run_context::instances; never resized.
  std::vector<instance_stats> per_instance;
};

}  // namespace feed::bot
