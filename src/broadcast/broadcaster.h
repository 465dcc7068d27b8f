// The broadcaster: turns stored messages into SSE frames, in seq order, and
// hands them to every event loop's hub.
//
// fan_out() may be called from any thread (the worker in embedded mode, the
// events-processed subscriber with Kafka). It drops duplicates, holds back
// messages that arrive ahead of a hole, and serializes each message once.
// A hole that is still open after gap_wait is filled from the store by a
// background thread (gap_filler), so a lost processed event delays the feed
// but never removes a message from it.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "base/result.h"
#include "broadcast/hub.h"
#include "broadcast/sequencer.h"

namespace feed {

struct broadcaster_options {
  hub_options hub;
  std::chrono::milliseconds gap_wait{300};  // how long a hole may stay open before the store is asked
  std::size_t max_pending = 100'000;        // messages held back behind a hole, at most
  // How often to compare the store's highest seq with the last delivered
  // one, to catch a lost event at the tail (no later event reveals that
  // hole). 0 disables it: embedded mode cannot lose events in transit.
  std::chrono::milliseconds head_probe_interval{0};
};

// Reads seqs [first, last] from the store.
using gap_filler = std::function<result<std::vector<message>>(seq_t first, seq_t last)>;
// The store's highest committed seq.
using head_probe = std::function<result<seq_t>()>;

class broadcaster {
 public:
  // read_page serves subscribers catching up from the store (see hub.h).
  broadcaster(const std::vector<boost::asio::io_context*>& loops, seq_t last, broadcaster_options opts,
              gap_filler fill, head_probe probe = {}, page_reader read_page = {});
  ~broadcaster();
  broadcaster(const broadcaster&) = delete;
  broadcaster& operator=(const broadcaster&) = delete;

  void fan_out(std::vector<message> stored);

  // The hub of loop i (same order as the loops given at construction).
  hub& hub_at(std::size_t i) { return *hubs_[i]; }
  std::size_t hubs() const { return hubs_.size(); }
  // Any thread: counters of hub i.
  const hub_stats& hub_stats_at(std::size_t i) const { return hubs_[i]->stats(); }
  seq_t last_seq() const;
  // Any thread: SSE streams attached across all hubs.
  std::size_t open_streams() const;

  // Stops the gap thread. Hubs are closed by their own loops (close_all).
  void stop();

 private:
  static constexpr std::size_t kFramesPerBlock = 32;  // frames per allocation, at most
  void deliver(std::vector<message> run);  // requires mu_
  void gap_loop();
  void probe_tail(std::unique_lock<std::mutex>& lock);

  const broadcaster_options opts_;
  const gap_filler fill_;
  const head_probe probe_;
  std::vector<std::unique_ptr<hub>> hubs_;  // constant after construction
  mutable std::mutex mu_;
  std::condition_variable gap_cv_;
  sequencer seq_;                                     // GUARDED_BY(mu_)
  std::chrono::steady_clock::time_point hole_since_;  // GUARDED_BY(mu_)
  bool stopping_ = false;                             // GUARDED_BY(mu_)
  // The store's head when a probe first found it ahead of what was
  // delivered, and when: the seqs up to it are the ones then missing.
  struct behind {
    std::chrono::steady_clock::time_point since;
    seq_t head;
  };
  std::optional<behind> behind_;  // GUARDED_BY(mu_)
  std::thread gap_thread_;
};

}  // namespace feed
